//! Experiment results: each variant's Beta-Binomial posterior ([`stats`]) from its
//! `results_aggregates` row (`visitors`, `purchase`), written into `posterior`: for all
//! visitors (segment null) against the control's, and in each segment against the
//! control's in that segment (none where the segment has no control row).
//! `experimentResultsUpdated` subscribers hear every change.

use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use std::collections::BTreeMap;

use sea_orm::ConnectionTrait;
use serde_json::Value as Json;
use uuid::Uuid;

use super::lifecycle::CONTROL;
use super::may_manage;
use super::stats::{Beta, Posterior};
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;
use crate::tables::tables;

/// Recomputes the posteriors of an experiment's variants; returns how many changed.
pub async fn refresh(ctx: &WriteCtx<'_>, experiment: Uuid) -> ApiResult<u64> {
    may_manage(ctx)?;
    let experiments = tables().named("experiments")?;
    let mut visible = Query::select();
    visible
        .from(experiments.name)
        .column("id")
        .and_where(Expr::col("id").eq(experiment))
        .cond_where(ctx.scope.write_condition(experiments)?);
    if ctx.db.query_one(&visible).await?.is_none() {
        return Err(ApiError::NotFound("experiment".to_owned()));
    }
    let results = tables().named("results_aggregates")?;
    let mut select = Query::select();
    select
        .from(results.name)
        .columns([
            "id",
            "variant",
            "visitors",
            "purchase",
            "posterior",
            "shop_id",
            "segment",
        ])
        .and_where(Expr::col("experiment_id").eq(experiment))
        .cond_where(ctx.scope.write_condition(results)?)
        .lock(LockType::Update);
    let mut segments: BTreeMap<Option<String>, Vec<Variant>> = BTreeMap::new();
    for row in ctx.db.query_all(&select).await? {
        let visitors: i32 = row.try_get_by_index(2)?;
        let purchases: i32 = row.try_get_by_index(3)?;
        let count = |n: i32| u64::try_from(n).unwrap_or(0);
        let posterior = Beta::posterior(count(visitors), count(purchases));
        let variant: String = row.try_get_by_index(1)?;
        let stored: Option<Json> = row.try_get_by_index(4)?;
        let ids: (Uuid, Uuid) = (row.try_get_by_index(0)?, row.try_get_by_index(5)?);
        let segment: Option<String> = row.try_get_by_index(6)?;
        segments
            .entry(segment)
            .or_default()
            .push((variant, posterior, stored, ids));
    }
    let mut changed = 0;
    for variants in segments.into_values() {
        changed += write_posteriors(ctx, experiment, variants).await?;
    }
    Ok(changed)
}

/// A variant's name, posterior, stored `posterior` and (row id, shop).
type Variant = (String, Beta, Option<Json>, (Uuid, Uuid));

/// Writes the posteriors of one segment's variants that changed; returns how many.
async fn write_posteriors(
    ctx: &WriteCtx<'_>,
    experiment: Uuid,
    variants: Vec<Variant>,
) -> ApiResult<u64> {
    let Some(control) = variants
        .iter()
        .find(|(name, ..)| name == CONTROL)
        .map(|(_, posterior, ..)| *posterior)
    else {
        return Ok(0);
    };
    let mut changed = 0;
    for (name, posterior, stored, (id, shop)) in variants {
        let computed = serde_json::to_value(Posterior::of(posterior, control, name == CONTROL))
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        // A stored float may come back one ulp off (JSON text through the database).
        if stored.is_some_and(|stored| same(&stored, &computed)) {
            continue;
        }
        let mut update = Query::update();
        update
            .table("results_aggregates")
            .value("posterior", computed)
            .and_where(Expr::col("id").eq(id));
        ctx.db.execute(&update).await?;
        ctx.outbox
            .record(Write::update("results_aggregates", id, Some(shop)).key(experiment));
        changed += 1;
    }
    Ok(changed)
}

/// Whether two posteriors agree to 1e-12 in every field.
fn same(stored: &Json, computed: &Json) -> bool {
    match (stored.as_object(), computed.as_object()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && b.iter().all(|(key, value)| {
                    match (a.get(key).and_then(Json::as_f64), value.as_f64()) {
                        (Some(x), Some(y)) => (x - y).abs() < 1e-12,
                        _ => false,
                    }
                })
        }
        _ => false,
    }
}
