//! Patches to the storefront, numbered per target (`applied_to`), and the
//! recommendations they come from. A rollback is a new patch that restores what the
//! rolled-back one replaced; only a target's latest patch can be rolled back.

use chrono::Utc;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use super::may_manage;
use crate::domains::{WriteCtx, invalid_transition, next_version};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// A patch to apply.
#[derive(Clone, Debug)]
pub struct NewPatch {
    /// What it changes, e.g. `product:123:title` (1 to 500 characters).
    pub applied_to: String,
    /// The change.
    pub payload: Json,
    /// What undoes it.
    pub rollback_payload: Json,
}

impl NewPatch {
    /// Checks the parts given as `input.<field>`.
    pub fn parse(
        applied_to: &str,
        payload: Json,
        rollback_payload: Option<Json>,
    ) -> ApiResult<Self> {
        let applied_to = applied_to.trim();
        if applied_to.is_empty() || applied_to.chars().count() > 500 {
            return Err(ApiError::bad_input(
                "input.appliedTo",
                "must be 1 to 500 characters",
            ));
        }
        if !payload.is_object() {
            return Err(ApiError::bad_input("input.payload", "must be an object"));
        }
        let rollback_payload = rollback_payload.unwrap_or_else(|| Json::Object(Default::default()));
        if !rollback_payload.is_object() {
            return Err(ApiError::bad_input(
                "input.rollbackPayload",
                "must be an object",
            ));
        }
        Ok(Self {
            applied_to: applied_to.to_owned(),
            payload,
            rollback_payload,
        })
    }
}

/// The shop the caller manages, locked for the rest of the request: patches of one shop
/// are numbered one writer at a time, across instances too.
async fn lock_shop(ctx: &WriteCtx<'_>, shop: Uuid) -> ApiResult<()> {
    let mut select = Query::select();
    select
        .from("shops")
        .column("id")
        .and_where(Expr::col("id").eq(shop))
        .lock(LockType::Update);
    ctx.db.query_one(&select).await?;
    Ok(())
}

/// The shop a new patch belongs to: the caller's, or for `service_role` the one named.
fn shop_of(ctx: &WriteCtx<'_>, named: Option<Uuid>) -> ApiResult<Uuid> {
    match (ctx.principal, named) {
        (crate::auth::Principal::Shop { id }, _) => Ok(*id),
        (crate::auth::Principal::Service, Some(shop)) => Ok(shop),
        _ => Err(ApiError::bad_input(
            "input.shopId",
            "service_role names the shop",
        )),
    }
}

/// Writes version `last + 1` of `patch.applied_to` in `shop`, which must be locked.
async fn append(
    ctx: &WriteCtx<'_>,
    shop: Uuid,
    patch: NewPatch,
    recommendation: Option<Uuid>,
) -> ApiResult<Uuid> {
    let target = Condition::all()
        .add(Expr::col("shop_id").eq(shop))
        .add(Expr::col("applied_to").eq(patch.applied_to.as_str()));
    let version = next_version(ctx, "patches", target).await?;
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("patches")
        .columns([
            "id",
            "recommendation_id",
            "applied_to",
            "payload",
            "rollback_payload",
            "version",
            "shop_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(Value::Uuid(recommendation)),
            Expr::val(patch.applied_to),
            Expr::val(patch.payload),
            Expr::val(patch.rollback_payload),
            Expr::val(version),
            Expr::val(shop),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox.record(Write::insert("patches", id, Some(shop)));
    Ok(id)
}

/// Applies a patch: the target's next version.
pub async fn apply(ctx: &WriteCtx<'_>, (patch, shop): (NewPatch, Option<Uuid>)) -> ApiResult<Uuid> {
    may_manage(ctx)?;
    let shop = shop_of(ctx, shop)?;
    lock_shop(ctx, shop).await?;
    append(ctx, shop, patch, None).await
}

/// Rolls a patch back with a new patch that restores what it replaced; the rolled-back
/// patch is marked, never deleted. Only the target's latest patch, not already rolled
/// back, may be: anything else is `INVALID_TRANSITION`.
pub async fn roll_back(ctx: &WriteCtx<'_>, id: Uuid) -> ApiResult<Uuid> {
    may_manage(ctx)?;
    let patches = tables().named("patches")?;
    let mut select = Query::select();
    select
        .from(patches.name)
        .columns([
            "shop_id",
            "applied_to",
            "payload",
            "rollback_payload",
            "version",
            "rolled_back_at",
            "recommendation_id",
        ])
        .and_where(Expr::col("id").eq(id))
        .cond_where(ctx.scope.write_condition(patches)?);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("patch".to_owned()));
    };
    let shop: Uuid = row.try_get_by_index(0)?;
    lock_shop(ctx, shop).await?;
    let applied_to: String = row.try_get_by_index(1)?;
    let version: i32 = row.try_get_by_index(4)?;
    let rolled_back: Option<chrono::DateTime<Utc>> = row.try_get_by_index(5)?;
    let recommendation: Option<Uuid> = row.try_get_by_index(6)?;
    let mut latest = Query::select();
    latest
        .from(patches.name)
        .expr(Expr::col("version").max())
        .and_where(Expr::col("shop_id").eq(shop))
        .and_where(Expr::col("applied_to").eq(applied_to.as_str()));
    let last: Option<i32> = match ctx.db.query_one(&latest).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => None,
    };
    if rolled_back.is_some() || last != Some(version) {
        return Err(ApiError::refused(
            "input.id",
            InputCode::InvalidTransition,
            format!(
                "only the latest patch of {applied_to} (version {}) can be rolled back",
                last.unwrap_or(0)
            ),
        ));
    }
    let undo = NewPatch {
        applied_to,
        payload: row.try_get_by_index(3)?,
        rollback_payload: row.try_get_by_index(2)?,
    };
    let restoring = append(ctx, shop, undo, None).await?;
    let mut mark = Query::update();
    mark.table(patches.name)
        .value("rolled_back_at", Utc::now())
        .and_where(Expr::col("id").eq(id));
    ctx.db.execute(&mark).await?;
    ctx.outbox.record(Write::update("patches", id, Some(shop)));
    if let Some(recommendation) = recommendation {
        set_recommendation(ctx, recommendation, shop, "rolled_back").await?;
    }
    Ok(restoring)
}

/// What a recommendation may become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The merchant will apply it.
    Accept,
    /// The merchant will not.
    Dismiss,
}

/// Accepts or dismisses a pending recommendation.
pub async fn decide(ctx: &WriteCtx<'_>, (id, decision): (Uuid, Decision)) -> ApiResult<Uuid> {
    may_manage(ctx)?;
    let (status, shop, _) = recommendation(ctx, id).await?;
    if status != "pending" {
        return Err(invalid_transition("recommendation", &status, "be decided"));
    }
    let to = match decision {
        Decision::Accept => "accepted",
        Decision::Dismiss => "dismissed",
    };
    set_recommendation(ctx, id, shop, to).await?;
    Ok(id)
}

/// Applies an accepted recommendation: its `patch_payload` becomes a patch of its entity
/// (`<entity_type>:<entity_id>`), and the recommendation is `applied`.
pub async fn apply_recommendation(ctx: &WriteCtx<'_>, id: Uuid) -> ApiResult<Uuid> {
    may_manage(ctx)?;
    let (status, shop, row) = recommendation(ctx, id).await?;
    if status != "accepted" {
        return Err(invalid_transition(
            "recommendation",
            &status,
            "be applied; accept it first",
        ));
    }
    let entity_type: String = row.try_get_by_index(2)?;
    let entity_id: String = row.try_get_by_index(3)?;
    let payload: Option<Json> = row.try_get_by_index(4)?;
    let Some(payload) = payload.filter(Json::is_object) else {
        return Err(ApiError::refused(
            "input.id",
            InputCode::Invalid,
            "the recommendation has no patch to apply",
        ));
    };
    lock_shop(ctx, shop).await?;
    let patch = NewPatch {
        applied_to: format!("{entity_type}:{entity_id}"),
        payload,
        rollback_payload: Json::Object(Default::default()),
    };
    let patch = append(ctx, shop, patch, Some(id)).await?;
    set_recommendation(ctx, id, shop, "applied").await?;
    Ok(patch)
}

/// A recommendation the caller may write, locked: (status, shop, the row with
/// `entity_type`, `entity_id`, `patch_payload` at 2, 3, 4).
async fn recommendation(
    ctx: &WriteCtx<'_>,
    id: Uuid,
) -> ApiResult<(String, Uuid, sea_orm::QueryResult)> {
    let recommendations = tables().named("recommendations")?;
    let mut select = Query::select();
    select
        .from(recommendations.name)
        .columns([
            "status",
            "shop_id",
            "entity_type",
            "entity_id",
            "patch_payload",
        ])
        .and_where(Expr::col("id").eq(id))
        .cond_where(ctx.scope.write_condition(recommendations)?)
        .lock(LockType::Update);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("recommendation".to_owned()));
    };
    Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?, row))
}

async fn set_recommendation(
    ctx: &WriteCtx<'_>,
    id: Uuid,
    shop: Uuid,
    status: &str,
) -> ApiResult<()> {
    let mut update = Query::update();
    update
        .table("recommendations")
        .value("status", status)
        .and_where(Expr::col("id").eq(id));
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update("recommendations", id, Some(shop)));
    Ok(())
}
