//! An experiment's variants, allocations and states.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func, LockType, Query};
use sea_orm::{ConnectionTrait, Value};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::may_manage;
use crate::domains::{WriteCtx, invalid_transition};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// The variant every experiment compares against.
pub const CONTROL: &str = "control";

/// An experiment's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Being set up.
    Draft,
    /// Assigning visitors.
    Running,
    /// Stopped for now; assignments stay.
    Paused,
    /// Ended; its results are final.
    Completed,
    /// Put away.
    Archived,
}

impl Status {
    /// Every state.
    pub const ALL: [Self; 5] = [
        Self::Draft,
        Self::Running,
        Self::Paused,
        Self::Completed,
        Self::Archived,
    ];

    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Archived => "archived",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether an experiment in this state may move to `next`.
    pub fn may_become(self, next: Self) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Draft, Running | Archived)
                | (Running, Paused | Completed)
                | (Paused, Running | Completed)
                | (Completed, Archived)
        )
    }
}

/// The rule the generated experiment writes apply: `allocation` maps each variant to its
/// share, shares in (0, 1] summing to 1, `control` among them; `variants` is an object
/// with `control` among its keys; `guardrails` as [`super::guardrails::Guardrails`] reads
/// them.
pub fn rule(column: &str, value: &Value) -> Result<(), (InputCode, String)> {
    let Value::Json(Some(json)) = value else {
        return Ok(());
    };
    let checked = match column {
        "allocation" => allocation(json).map(|_| ()),
        "variants" => variants(json).map(|_| ()),
        "guardrails" => super::guardrails::Guardrails::parse(json).map(|_| ()),
        _ => Ok(()),
    };
    checked.map_err(|message| (InputCode::Invalid, message))
}

fn with_control<'a>(json: &'a Json, what: &str) -> Result<&'a Map<String, Json>, String> {
    let object = json
        .as_object()
        .ok_or_else(|| format!("must be an object of {what} by variant"))?;
    if !object.contains_key(CONTROL) {
        return Err(format!("must have a `{CONTROL}` variant"));
    }
    if object.len() < 2 {
        return Err("must have at least two variants".to_owned());
    }
    Ok(object)
}

/// Checks an allocation; returns its variants' shares.
pub fn allocation(json: &Json) -> Result<Vec<(String, f64)>, String> {
    let object = with_control(json, "shares")?;
    let mut shares = Vec::with_capacity(object.len());
    for (variant, share) in object {
        match share.as_f64() {
            Some(s) if s > 0.0 && s <= 1.0 => shares.push((variant.clone(), s)),
            _ => {
                return Err(format!(
                    "{variant}: a share must be more than 0 and at most 1"
                ));
            }
        }
    }
    let total: f64 = shares.iter().map(|(_, s)| s).sum();
    if (total - 1.0).abs() > 1e-9 {
        return Err(format!("the shares must sum to 1, not {total}"));
    }
    Ok(shares)
}

fn variants(json: &Json) -> Result<Vec<String>, String> {
    with_control(json, "settings").map(|o| o.keys().cloned().collect())
}

/// Moves an experiment to `next`: starting checks that the allocation covers exactly the
/// variants and records `started_at` (once); completing records `ended_at`. Any other move
/// [`Status::may_become`] refuses is `INVALID_TRANSITION`.
pub async fn advance(ctx: &WriteCtx<'_>, id: Uuid, next: Status) -> ApiResult<Uuid> {
    may_manage(ctx)?;
    let experiments = tables().named("experiments")?;
    let mut select = Query::select();
    select
        .from(experiments.name)
        .columns(["status", "allocation", "variants", "shop_id"])
        .and_where(Expr::col("id").eq(id))
        .cond_where(ctx.scope.write_condition(experiments)?)
        .lock(LockType::Update);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("experiment".to_owned()));
    };
    let stored: String = row.try_get_by_index(0)?;
    let shop: Uuid = row.try_get_by_index(3)?;
    let before = Status::parse(&stored)
        .ok_or_else(|| ApiError::Internal(format!("experiment {id} has status {stored}")))?;
    if !before.may_become(next) {
        let to = format!("become {}", next.as_str());
        return Err(invalid_transition("experiment", before.as_str(), &to));
    }
    let mut update = Query::update();
    update
        .table(experiments.name)
        .value("status", next.as_str())
        .and_where(Expr::col("id").eq(id));
    match next {
        Status::Running => {
            let shares: Json = row.try_get_by_index(1)?;
            let named: Json = row.try_get_by_index(2)?;
            let mut allocated: Vec<String> = allocation(&shares)
                .map_err(|m| {
                    ApiError::refused("input.id", InputCode::Invalid, format!("allocation {m}"))
                })?
                .into_iter()
                .map(|(variant, _)| variant)
                .collect();
            let mut declared = variants(&named).map_err(|m| {
                ApiError::refused("input.id", InputCode::Invalid, format!("variants {m}"))
            })?;
            allocated.sort();
            declared.sort();
            if allocated != declared {
                return Err(ApiError::refused(
                    "input.id",
                    InputCode::Invalid,
                    format!(
                        "the allocation covers {allocated:?} but the variants are {declared:?}"
                    ),
                ));
            }
            update.value(
                "started_at",
                Func::coalesce([Expr::col("started_at"), Expr::val(Utc::now())]),
            );
        }
        Status::Completed => {
            update.value("ended_at", Utc::now());
        }
        _ => {}
    }
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update("experiments", id, Some(shop)));
    Ok(id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn allocations_sum_to_one_with_a_control() {
        assert!(allocation(&json!({ "control": 0.5, "b": 0.5 })).is_ok());
        assert!(allocation(&json!({ "control": 0.2, "b": 0.3, "c": 0.5 })).is_ok());
        for bad in [
            json!({ "control": 0.5, "b": 0.4 }),
            json!({ "a": 0.5, "b": 0.5 }),
            json!({ "control": 1.0 }),
            json!({ "control": 0.0, "b": 1.0 }),
            json!({ "control": "half", "b": 0.5 }),
            json!([0.5, 0.5]),
        ] {
            assert!(allocation(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_lifecycle_is_decided_for_every_pair() {
        use Status::*;
        let allowed: Vec<_> = Status::ALL
            .into_iter()
            .flat_map(|a| Status::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.may_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Draft, Running),
                (Draft, Archived),
                (Running, Paused),
                (Running, Completed),
                (Paused, Running),
                (Paused, Completed),
                (Completed, Archived),
            ]
        );
    }
}
