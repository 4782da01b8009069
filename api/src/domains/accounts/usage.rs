//! Usage metrics: daily counters per user and metric (API requests, images crawled, tasks
//! run, credits spent), each incremented by one atomic upsert on `(user_id, date, metric)`
//! in the workflow's transaction, so concurrent increments are never lost. API requests
//! are counted in memory and written in batches ([`RequestMeter`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use uuid::Uuid;

use crate::domains::{ServiceWork, WriteCtx};
use crate::error::{ApiError, ApiResult};
use crate::realtime::{Broker, Write};

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Tasks a worker completed.
    TasksRun,
    /// Credits spent.
    CreditsSpent,
    /// New (not duplicate) images crawl jobs recorded.
    ImagesCrawled,
    /// GraphQL requests over HTTP ([`RequestMeter`]).
    ApiRequests,
}

impl Metric {
    /// The metric as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TasksRun => "tasks_run",
            Self::CreditsSpent => "credits_spent",
            Self::ImagesCrawled => "images_crawled",
            Self::ApiRequests => "api_requests",
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

/// Users' API requests, counted in memory on the request path and added to
/// `usage_metrics` in batches by [`meter_requests`]: a read never writes, and the counts
/// of many requests become one upsert per user. Counts not yet flushed when the process
/// dies are lost (at most one period's); a failed flush puts its counts back.
#[derive(Clone, Debug, Default)]
pub struct RequestMeter(Arc<Mutex<HashMap<Uuid, i64>>>);

impl RequestMeter {
    /// Counts one request of `user`.
    pub fn count(&self, user: Uuid) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(user).or_default() += 1;
        }
    }

    /// How many users have counts waiting to be written.
    pub fn pending(&self) -> usize {
        self.0.lock().map(|counts| counts.len()).unwrap_or_default()
    }

    fn take(&self) -> HashMap<Uuid, i64> {
        self.0
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }

    fn put_back(&self, counts: HashMap<Uuid, i64>) {
        if let Ok(mut held) = self.0.lock() {
            for (user, n) in counts {
                *held.entry(user).or_default() += n;
            }
        }
    }

    /// Adds the counts so far to today's `api_requests` metrics, in one transaction as
    /// `service_role`; returns the writes, for the broker.
    pub async fn flush(&self, db: &DatabaseConnection) -> ApiResult<Vec<Write>> {
        let counts = self.take();
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let outcome = async {
            let work = ServiceWork::begin(db).await?;
            for (user, n) in &counts {
                increment(&work.ctx(), *user, Metric::ApiRequests, *n).await?;
            }
            work.finish(true).await
        }
        .await;
        if outcome.is_err() {
            self.put_back(counts);
        }
        outcome
    }
}

/// How often counted API requests are written.
pub const METER_EVERY: Duration = Duration::from_secs(1);

/// The request meter's flusher, a task of `stratix serve`.
pub async fn meter_requests(meter: RequestMeter, db: DatabaseConnection, broker: Broker) {
    let mut ticks = tokio::time::interval(METER_EVERY);
    loop {
        ticks.tick().await;
        match meter.flush(&db).await {
            Ok(writes) => broker.publish(writes),
            Err(error) => tracing::warn!(%error, "writing API request counts failed"),
        }
    }
}
