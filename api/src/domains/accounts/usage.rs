//! Usage metrics: daily counters per user and metric (API requests, images crawled, tasks
//! run, credits spent), each incremented by one atomic upsert on `(user_id, date, metric)`
//! in the workflow's transaction, so concurrent increments are never lost.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use uuid::Uuid;

use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Tasks a worker completed.
    TasksRun,
    /// Credits spent.
    CreditsSpent,
    /// New (not duplicate) images crawl jobs recorded.
    ImagesCrawled,
}

impl Metric {
    /// The metric as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TasksRun => "tasks_run",
            Self::CreditsSpent => "credits_spent",
            Self::ImagesCrawled => "images_crawled",
        }
    }
}

/// Adds `by` to `user`'s counter of `metric` for today (UTC).
pub async fn increment(ctx: &WriteCtx<'_>, user: Uuid, metric: Metric, by: i64) -> ApiResult<()> {
    let mut upsert = Query::insert();
    upsert
        .into_table("usage_metrics")
        .columns(["id", "date", "metric", "value", "user_id"])
        .values([
            Expr::val(Uuid::new_v4()),
            Expr::val(Utc::now().date_naive()),
            Expr::val(metric.as_str()),
            Expr::val(by),
            Expr::val(user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns(["user_id", "date", "metric"])
                .value(
                    "value",
                    Expr::col(("usage_metrics", "value")).add(Expr::col(("excluded", "value"))),
                )
                .to_owned(),
        )
        .returning(Query::returning().column("id"));
    let row = ctx
        .db
        .query_one(&upsert)
        .await?
        .ok_or_else(|| ApiError::Internal("usage upsert returned nothing".to_owned()))?;
    let id: Uuid = row.try_get_by_index(0)?;
    ctx.outbox
        .record(Write::update("usage_metrics", id, Some(user)));
    Ok(())
}
