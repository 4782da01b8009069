//! Sticky assignment of a storefront's visitors to a running experiment's variants.
//!
//! A visitor's variant is decided by a hash of the experiment and the visitor's anonymous
//! id ([`point`]) laid over the allocation's shares in the order of the variants' names
//! ([`pick`]): the same visitor gets the same variant on every call, on every instance and
//! on both backends, and the visitors split as the shares say. The first assignment is
//! recorded (`assignments`, one row per visitor, its unique key deciding between
//! concurrent first calls) and is what later calls return, even if the allocation changes.

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use serde_json::Value as Json;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::lifecycle::{Status, allocation};
use crate::domains::WriteCtx;
use crate::domains::shopify::events::shop_of;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;

/// The longest visitor or session id, in characters.
const MAX_ID: usize = 128;

/// Who asks to be assigned.
#[derive(Clone, Debug)]
pub struct Visitor {
    experiment: Uuid,
    anon_id: String,
    session_id: String,
}

impl Visitor {
    /// Checks the parts given as `input.<field>`.
    pub fn parse(experiment: Uuid, anon_id: &str, session_id: Option<&str>) -> ApiResult<Self> {
        let checked = |field: &str, text: &str, required: bool| {
            if required && text.is_empty() {
                Err(ApiError::refused(field, InputCode::Blank, "is required"))
            } else if text.chars().count() > MAX_ID {
                Err(ApiError::refused(
                    field,
                    InputCode::TooLong,
                    format!("must be at most {MAX_ID} characters"),
                ))
            } else {
                Ok(text.to_owned())
            }
        };
        Ok(Self {
            experiment,
            anon_id: checked("input.anonId", anon_id, true)?,
            session_id: checked("input.sessionId", session_id.unwrap_or_default(), false)?,
        })
    }
}

/// A visitor's variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    /// The variant's name.
    pub variant: String,
    /// Its settings: its entry in the experiment's `variants`.
    pub config: Json,
}

/// Where in [0, 1) a visitor falls for an experiment: the first 52 bits of
/// SHA-256(experiment id bytes, anon id).
pub fn point(experiment: Uuid, anon_id: &str) -> f64 {
    let mut hash = Sha256::new();
    hash.update(experiment.as_bytes());
    hash.update(anon_id.as_bytes());
    let digest = hash.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 52 bits as the mantissa of a number in [1, 2), exactly, minus 1.
    f64::from_bits(0x3FF0_0000_0000_0000 | (u64::from_be_bytes(first) >> 12)) - 1.0
}

/// The variant whose share covers `point`, the shares laid end to end in the order of
/// the variants' names (how each database orders JSON keys plays no part).
pub fn pick(shares: &[(String, f64)], point: f64) -> Option<&str> {
    let mut ordered: Vec<&(String, f64)> = shares.iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut end = 0.0;
    for (variant, share) in &ordered {
        end += share;
        if point < end {
            return Some(variant);
        }
    }
    // Shares summing to 1 within rounding: the last one takes what rounding left.
    ordered.last().map(|(variant, _)| variant.as_str())
}

/// Assigns the visitor to a variant of the caller's shop's running experiment, once;
/// later calls return the recorded variant.
pub async fn assign(ctx: &WriteCtx<'_>, visitor: Visitor) -> ApiResult<Assignment> {
    // Read and written for the shop only (the storefront's API scope reads nothing).
    let shop = shop_of(ctx.principal)?;
    let mut select = Query::select();
    select
        .from("experiments")
        .columns(["status", "allocation", "variants"])
        .and_where(Expr::col("id").eq(visitor.experiment))
        .and_where(Expr::col("shop_id").eq(shop));
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::refused(
            "input.experimentId",
            InputCode::NotFound,
            "no such experiment",
        ));
    };
    let status: String = row.try_get_by_index(0)?;
    if status != Status::Running.as_str() {
        return Err(ApiError::refused(
            "input.experimentId",
            InputCode::InvalidTransition,
            format!("the experiment is {status}: only a running experiment assigns visitors"),
        ));
    }
    let variants: Json = row.try_get_by_index(2)?;
    let config = |variant: &str| variants.get(variant).cloned().unwrap_or(Json::Null);
    if let Some(variant) = recorded(ctx, shop, &visitor).await? {
        return Ok(Assignment {
            config: config(&variant),
            variant,
        });
    }
    let shares = allocation(&row.try_get_by_index(1)?)
        .map_err(|m| ApiError::Internal(format!("running experiment's allocation {m}")))?;
    let variant = pick(&shares, point(visitor.experiment, &visitor.anon_id))
        .ok_or_else(|| ApiError::Internal("an allocation without variants".to_owned()))?
        .to_owned();
    let first = NewAssignment {
        shop,
        experiment: visitor.experiment,
        anon_id: &visitor.anon_id,
        session_id: &visitor.session_id,
        variant: &variant,
        exposed: None,
    };
    if record(ctx, first).await? {
        return Ok(Assignment {
            config: config(&variant),
            variant,
        });
    }
    // A concurrent first call recorded it: its row is the assignment.
    let variant = recorded(ctx, shop, &visitor)
        .await?
        .ok_or_else(|| ApiError::Internal("the conflicting assignment is gone".to_owned()))?;
    Ok(Assignment {
        config: config(&variant),
        variant,
    })
}

/// A visitor's first assignment.
pub(super) struct NewAssignment<'a> {
    pub shop: Uuid,
    pub experiment: Uuid,
    pub anon_id: &'a str,
    pub session_id: &'a str,
    pub variant: &'a str,
    /// When the storefront showed the visitor the variant, and their segment, if it has.
    pub exposed: Option<(DateTime<Utc>, Option<&'a str>)>,
}

/// Records `new` unless the visitor has an assignment already (the unique key decides
/// between concurrent first calls); whether it did.
pub(super) async fn record(ctx: &WriteCtx<'_>, new: NewAssignment<'_>) -> ApiResult<bool> {
    let id = Uuid::new_v4();
    let (exposed_at, segment) = new.exposed.unzip();
    let mut insert = Query::insert();
    insert
        .into_table("assignments")
        .columns([
            "id",
            "experiment_id",
            "anon_id",
            "session_id",
            "variant",
            "shop_id",
            "exposed_at",
            "segment",
        ])
        .values([
            Expr::val(id),
            Expr::val(new.experiment),
            Expr::val(new.anon_id),
            Expr::val(new.session_id),
            Expr::val(new.variant),
            Expr::val(new.shop),
            Expr::val(exposed_at),
            Expr::val(segment.flatten()),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns(["shop_id", "experiment_id", "anon_id"])
                .do_nothing()
                .to_owned(),
        );
    let inserted = ctx.db.execute(&insert).await?.rows_affected() == 1;
    if inserted {
        ctx.outbox
            .record(Write::insert("assignments", id, Some(new.shop)));
    }
    Ok(inserted)
}

async fn recorded(ctx: &WriteCtx<'_>, shop: Uuid, visitor: &Visitor) -> ApiResult<Option<String>> {
    let mut select = Query::select();
    select
        .from("assignments")
        .column("variant")
        .and_where(Expr::col("shop_id").eq(shop))
        .and_where(Expr::col("experiment_id").eq(visitor.experiment))
        .and_where(Expr::col("anon_id").eq(visitor.anon_id.as_str()));
    match ctx.db.query_one(&select).await? {
        Some(row) => Ok(Some(row.try_get_by_index(0)?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_stable_and_spread() {
        let experiment = Uuid::from_u128(7);
        assert_eq!(point(experiment, "v1"), point(experiment, "v1"));
        assert_ne!(point(experiment, "v1"), point(Uuid::from_u128(8), "v1"));
        let below_half = (0..10_000)
            .filter(|i| point(experiment, &format!("v{i}")) < 0.5)
            .count();
        // Binomial(10,000, 0.5): sd 50; 6 sd either side never happens by chance.
        assert!((4_700..=5_300).contains(&below_half), "{below_half}");
    }

    #[test]
    fn shares_are_laid_out_in_name_order() {
        let shares = vec![("control".to_owned(), 0.25), ("b".to_owned(), 0.75)];
        assert_eq!(pick(&shares, 0.0), Some("b"));
        assert_eq!(pick(&shares, 0.7499), Some("b"));
        assert_eq!(pick(&shares, 0.75), Some("control"));
        assert_eq!(pick(&shares, 0.999_999_999), Some("control"));
    }
}
