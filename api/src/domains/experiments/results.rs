//! Experiment results: each variant's Beta-Binomial posterior ([`stats`]) from its
//! `results_aggregates` row (`visitors`, `purchase`; the overall row, segment null),
//! written into `posterior`. `experimentResultsUpdated` subscribers hear every change.

use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::Value as Json;
use uuid::Uuid;

use super::lifecycle::CONTROL;
use super::may_manage;
use super::stats::{Beta, Posterior};
use crate::domains::{ServiceWork, WriteCtx};
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
        ])
        .and_where(Expr::col("experiment_id").eq(experiment))
        .and_where(Expr::col("segment").is_null())
        .cond_where(ctx.scope.write_condition(results)?)
        .lock(LockType::Update);
    let rows = ctx.db.query_all(&select).await?;
    let mut variants = Vec::with_capacity(rows.len());
    for row in &rows {
        let visitors: i32 = row.try_get_by_index(2)?;
        let purchases: i32 = row.try_get_by_index(3)?;
        let count = |n: i32| u64::try_from(n).unwrap_or(0);
        let posterior = Beta::posterior(count(visitors), count(purchases));
        let variant: String = row.try_get_by_index(1)?;
        let stored: Option<Json> = row.try_get_by_index(4)?;
        let ids: (Uuid, Uuid) = (row.try_get_by_index(0)?, row.try_get_by_index(5)?);
        variants.push((variant, posterior, stored, ids));
    }
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
            .table(results.name)
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

/// Refreshes the posteriors of every running experiment, as `service_role`, one
/// transaction each; returns the writes, for the broker. Unchanged results are not
/// written, so a quiet experiment costs one read.
pub async fn refresh_running(db: &DatabaseConnection) -> ApiResult<Vec<Write>> {
    let mut running = Query::select();
    running
        .from("experiments")
        .column("id")
        .and_where(Expr::col("status").eq("running"));
    let mut writes = Vec::new();
    for row in db.query_all(&running).await? {
        let experiment: Uuid = row.try_get_by_index(0)?;
        let work = ServiceWork::begin(db).await?;
        let refreshed = refresh(&work.ctx(), experiment).await;
        let published = work.finish(refreshed.is_ok()).await?;
        refreshed?;
        writes.extend(published);
    }
    Ok(writes)
}
