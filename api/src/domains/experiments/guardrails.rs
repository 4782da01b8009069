//! An experiment's guardrails (`experiments.guardrails`): `max_duration_days` (1..365)
//! ends a running experiment once it has run that long, so a forgotten test stops taking
//! traffic; `min_sample` (>= 0) is the sample size the shop wants before acting on the
//! results. The results refresh job checks them ([`end_overdue`]).

use chrono::{Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, LockType, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use serde_json::Value as Json;
use uuid::Uuid;

use super::lifecycle::Status;
use crate::domains::ServiceWork;
use crate::error::ApiResult;
use crate::realtime::Write;

/// `max_duration_days`' range.
pub const MAX_DURATION_DAYS: std::ops::RangeInclusive<i64> = 1..=365;

/// Checked guardrails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Guardrails {
    /// Days a running experiment may run before it is completed.
    pub max_duration_days: Option<i64>,
    /// Visitors per variant wanted before acting on the results.
    pub min_sample: Option<i64>,
}

impl Guardrails {
    /// Checks a `guardrails` object: only the keys above, each a whole number in range.
    pub fn parse(json: &Json) -> Result<Self, String> {
        let object = json
            .as_object()
            .ok_or("must be an object like {\"max_duration_days\": 14, \"min_sample\": 1000}")?;
        let mut guardrails = Self::default();
        for (key, value) in object {
            match key.as_str() {
                "max_duration_days" => {
                    let days = value.as_i64().filter(|d| MAX_DURATION_DAYS.contains(d));
                    guardrails.max_duration_days = Some(days.ok_or_else(|| {
                        format!(
                            "max_duration_days must be a whole number of days, {} to {}",
                            MAX_DURATION_DAYS.start(),
                            MAX_DURATION_DAYS.end()
                        )
                    })?);
                }
                "min_sample" => {
                    let sample = value.as_i64().filter(|n| *n >= 0);
                    guardrails.min_sample =
                        Some(sample.ok_or("min_sample must be a whole number, 0 or more")?);
                }
                other => {
                    return Err(format!(
                        "{other} is not a guardrail (max_duration_days, min_sample)"
                    ));
                }
            }
        }
        Ok(guardrails)
    }
}

/// Completes every running experiment that has run for its `max_duration_days` (status
/// `completed`, `ended_at` now), in one transaction as `service_role`; returns the writes
/// to publish.
pub async fn end_overdue(db: &DatabaseConnection) -> ApiResult<Vec<Write>> {
    let work = ServiceWork::begin(db).await?;
    let ended = end_in(&work).await;
    let writes = work.finish(ended.is_ok()).await?;
    ended?;
    Ok(writes)
}

async fn end_in(work: &ServiceWork) -> ApiResult<()> {
    let ctx = work.ctx();
    let mut running = Query::select();
    running
        .from("experiments")
        .columns(["id", "shop_id", "started_at", "guardrails"])
        .and_where(Expr::col("status").eq(Status::Running.as_str()))
        .lock(LockType::Update);
    let now = Utc::now();
    for row in ctx.db.query_all(&running).await? {
        let id: Uuid = row.try_get_by_index(0)?;
        let shop: Uuid = row.try_get_by_index(1)?;
        let started: Option<chrono::DateTime<Utc>> = row.try_get_by_index(2)?;
        let guardrails: Json = row.try_get_by_index(3)?;
        // Rows written before guardrails were checked may hold anything: they end nothing.
        let Some(days) = Guardrails::parse(&guardrails)
            .ok()
            .and_then(|g| g.max_duration_days)
        else {
            continue;
        };
        if started.is_none_or(|at| at + Duration::days(days) > now)
            || !Status::Running.may_become(Status::Completed)
        {
            continue;
        }
        let mut update = Query::update();
        update
            .table("experiments")
            .value("status", Status::Completed.as_str())
            .value("ended_at", now)
            .and_where(Expr::col("id").eq(id));
        ctx.db.execute(&update).await?;
        tracing::info!(experiment.id = %id, days, "experiment {id} ended: ran its {days} days");
        ctx.outbox
            .record(Write::update("experiments", id, Some(shop)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn guardrails_are_whole_numbers_in_range_and_nothing_else() {
        assert_eq!(
            Guardrails::parse(&json!({ "max_duration_days": 14, "min_sample": 0 })),
            Ok(Guardrails {
                max_duration_days: Some(14),
                min_sample: Some(0)
            })
        );
        assert_eq!(Guardrails::parse(&json!({})), Ok(Guardrails::default()));
        for bad in [
            json!({ "max_duration_days": 0 }),
            json!({ "max_duration_days": 366 }),
            json!({ "max_duration_days": 1.5 }),
            json!({ "max_duration_days": "7" }),
            json!({ "min_sample": -1 }),
            json!({ "min_sample": 10.5 }),
            json!({ "stop_if_worse": true }),
            json!([1]),
        ] {
            assert!(Guardrails::parse(&bad).is_err(), "{bad}");
        }
    }
}
