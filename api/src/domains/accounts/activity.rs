//! The activity log: every state change a workflow makes writes one `activity_logs` row in
//! the same transaction, so the log holds exactly what was committed.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, Query};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;

/// One state change.
#[derive(Clone, Debug)]
pub struct Change<'a> {
    /// Whose row it is (`users.id`).
    pub user: Uuid,
    /// The kind of row (`ai_task`, `credit_account`, ...).
    pub entity_type: &'static str,
    /// The row.
    pub entity: Uuid,
    /// What happened (`ai_task.claimed`, `credits.spent`, ...).
    pub action: &'static str,
    /// The state before.
    pub from: Value,
    /// The state after.
    pub to: Value,
    /// Anything else worth keeping (amounts, references).
    pub details: Option<&'a Value>,
}

/// Writes the log row of `change` in the workflow's transaction.
pub async fn record(ctx: &WriteCtx<'_>, change: Change<'_>) -> ApiResult<()> {
    let id = Uuid::new_v4();
    let mut details = json!({ "from": change.from, "to": change.to });
    if let (Some(extra), Some(map)) = (
        change.details.and_then(Value::as_object),
        details.as_object_mut(),
    ) {
        map.extend(extra.clone());
    }
    let mut insert = Query::insert();
    insert
        .into_table("activity_logs")
        .columns([
            "id",
            "log_type",
            "entity_id",
            "action",
            "details",
            "user_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(change.entity_type),
            Expr::val(change.entity),
            Expr::val(change.action),
            Expr::val(details),
            Expr::val(change.user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("activity_logs", id, Some(change.user)));
    Ok(())
}
