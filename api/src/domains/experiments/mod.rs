//! Conversion experiments (seed 004), driven by the shop's admin: [`lifecycle`] checks an
//! experiment's variants and allocations and moves it draft -> running <-> paused ->
//! completed -> archived; [`patches`] applies changes to the storefront as numbered
//! patches per target, rolls the latest back with a new patch (never deleting one), and
//! turns accepted recommendations into patches.

pub mod lifecycle;
pub mod patches;

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
