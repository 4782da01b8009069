//! Conversion experiments (seed 004), driven by the shop's admin: [`lifecycle`] checks an
//! experiment's variants and allocations and moves it draft -> running <-> paused ->
//! completed -> archived; [`patches`] applies changes to the storefront as numbered
//! patches per target, rolls the latest back with a new patch (never deleting one), and
//! turns accepted recommendations into patches; [`tally`] counts storefront events into
//! each variant's results from a watermark, a task of `stratix serve`, and [`results`]
//! keeps each variant's Beta-Binomial posterior ([`stats`]) current, after each count and
//! on demand; [`assignments`] puts a storefront's visitors in a running experiment's
//! variants, sticky; [`guardrails`] are checked on every write and end an experiment that
//! ran its course.

pub mod assignments;
pub mod guardrails;
pub mod lifecycle;
pub mod patches;
pub mod results;
pub mod stats;
pub mod tally;

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::realtime::Broker;

/// How often new events are counted into the results of running experiments.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// One pass of the results refresher (a background job of `stratix serve`, every
/// [`REFRESH_EVERY`]): the events that arrived since the last pass are counted, and the
/// touched experiments' posteriors refreshed; then the experiments whose [`guardrails`]
/// end them are completed; subscribers hear what changed.
pub async fn refresh_results(db: &DatabaseConnection, broker: &Broker) -> ApiResult<()> {
    broker.publish(tally::tally(db).await?);
    broker.publish(guardrails::end_overdue(db).await?);
    Ok(())
}

use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};

/// Refuses anyone but the shop (its session token) or `service_role`.
fn may_manage(ctx: &WriteCtx<'_>) -> ApiResult<()> {
    match ctx.principal {
        Principal::Shop { .. } | Principal::Service => Ok(()),
        _ => Err(ApiError::Forbidden(
            "experiments are managed by their shop".to_owned(),
        )),
    }
}
