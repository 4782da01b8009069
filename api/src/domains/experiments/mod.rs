//! Conversion experiments (seed 004), driven by the shop's admin: [`lifecycle`] checks an
//! experiment's variants and allocations and moves it draft -> running <-> paused ->
//! completed -> archived; [`patches`] applies changes to the storefront as numbered
//! patches per target, rolls the latest back with a new patch (never deleting one), and
//! turns accepted recommendations into patches; [`results`] keeps each variant's
//! Beta-Binomial posterior ([`stats`]) current, on demand and as a task of `stratix serve`;
//! [`assignments`] puts a storefront's visitors in a running experiment's variants, sticky.

pub mod assignments;
pub mod lifecycle;
pub mod patches;
pub mod results;
pub mod stats;

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::realtime::Broker;

/// How often the posteriors of running experiments are refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// One pass of the results refresher (a background job of `stratix serve`, every
/// [`REFRESH_EVERY`]): the posteriors of running experiments; subscribers hear what changed.
pub async fn refresh_results(db: &DatabaseConnection, broker: &Broker) -> ApiResult<()> {
    broker.publish(results::refresh_running(db).await?);
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
