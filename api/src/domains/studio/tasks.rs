//! The AI task queue. Workers claim the highest-priority, oldest task they may run and hold
//! it under a lease; they extend it with heartbeats and finish with a completion or a
//! failure, proving the lease with the `lease_id` the claim showed them. A task whose lease
//! ran out may be claimed again (and is put back by [`release_expired`]); a worker that
//! lost its lease is refused (`LEASE_LOST`). Two workers never hold one task: on
//! PostgreSQL the claim skips rows another claim has locked (`FOR UPDATE SKIP LOCKED`), on
//! SQLite a writing request holds the database's write lock.
//!
//! States: `pending` -> `in_progress` -> `completed` | `failed`, and `in_progress` ->
//! `pending` for a retry or an expired lease ([`Status::may_become`]).

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde_json::json;
use uuid::Uuid;

use crate::domains::accounts::activity::{self, Change};
use crate::domains::accounts::notifications::{self, Notice, Severity, Topic};
use crate::domains::accounts::usage::{self, Metric};
use crate::domains::{Lease, ServiceWork, WriteCtx, may_work};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::{Table, tables};

/// A task's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for a worker.
    Pending,
    /// Held by a worker.
    InProgress,
    /// Done.
    Completed,
    /// Failed for good.
    Failed,
}

impl Status {
    /// Every state.
    pub const ALL: [Self; 4] = [
        Self::Pending,
        Self::InProgress,
        Self::Completed,
        Self::Failed,
    ];

    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Whether a task in this state may move to `next`.
    pub fn may_become(self, next: Self) -> bool {
        matches!(
            (self, next),
            (Self::Pending, Self::InProgress)
                | (
                    Self::InProgress,
                    Self::Completed | Self::Failed | Self::Pending
                )
        )
    }
}

/// A claim: which kinds of task (`task_name`s; any when empty), for how long.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The task names the worker runs; empty for any.
    pub types: Vec<String>,
    /// How long the worker holds the task.
    pub lease: Lease,
}

/// A claimed task and the lease that proves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// `ai_tasks.id`.
    pub task: Uuid,
    /// What the worker shows to extend or finish the task.
    pub lease: Uuid,
}

/// A worker's hold on a task.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    /// `ai_tasks.id`.
    pub task: Uuid,
    /// The lease the claim gave.
    pub lease: Uuid,
}

/// How a worker ends its hold.
#[derive(Clone, Debug)]
pub enum Finish {
    /// The task is done, with its output.
    Complete(serde_json::Value),
    /// The task failed; with `retry`, it goes back to the queue while attempts remain.
    Fail {
        /// Why.
        error: String,
        /// Whether to try again.
        retry: bool,
    },
}

fn ai_tasks() -> ApiResult<&'static Table> {
    tables().named("ai_tasks")
}

/// The next task the worker may claim: the highest-priority, oldest pending one (read
/// from `idx_tasks_claim`, the first row no other claim has locked), else one whose lease
/// ran out with attempts left (which the sweeper would otherwise put back). Returns its id
/// and status.
async fn next_claimable(
    ctx: &WriteCtx<'_>,
    types: &[String],
) -> ApiResult<Option<sea_orm::QueryResult>> {
    use migration::task_queue::{HELD, PENDING, PRIORITY_RANK};
    let table = ai_tasks()?;
    let candidates = |state: &str| -> ApiResult<SelectStatement> {
        let mut next = Query::select();
        next.from(table.name)
            .columns(["id", "status"])
            .and_where(Expr::cust(state.to_owned()))
            .cond_where(ctx.scope.write_condition(table)?)
            .limit(1)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        if !types.is_empty() {
            next.and_where(Expr::col("task_name").is_in(types.iter().cloned()));
        }
        Ok(next)
    };
    let mut pending = candidates(PENDING)?;
    pending
        .order_by_expr(Expr::cust(PRIORITY_RANK), Order::Asc)
        .order_by("created_at", Order::Asc)
        .order_by("id", Order::Asc);
    if let Some(found) = ctx.db.query_one(&pending).await? {
        return Ok(Some(found));
    }
    let mut expired = candidates(HELD)?;
    expired
        .and_where(Expr::col("lease_expires_at").lt(Utc::now()))
        .and_where(Expr::col("attempts").lt(Expr::col("max_attempts")))
        .order_by("lease_expires_at", Order::Asc);
    Ok(ctx.db.query_one(&expired).await?)
}

/// Claims the next task the worker may run, or `None` when there is none.
pub async fn claim(ctx: &WriteCtx<'_>, input: Claim) -> ApiResult<Option<Claimed>> {
    may_work(ctx)?;
    let table = ai_tasks()?;
    let Some(found) = next_claimable(ctx, &input.types).await? else {
        return Ok(None);
    };
    let task: Uuid = found.try_get_by_index(0)?;
    let before: String = found.try_get_by_index(1)?;
    let lease = Uuid::new_v4();
    let mut update = Query::update();
    update
        .table(table.name)
        .value("status", Status::InProgress.as_str())
        .value("lease_id", lease)
        .value("lease_expires_at", input.lease.until())
        .value("attempts", Expr::col("attempts").add(1))
        .and_where(Expr::col("id").eq(task))
        .returning(Query::returning().columns(["status", "clone_id", "user_id"]));
    let row = ctx
        .db
        .query_one(&update)
        .await?
        .ok_or_else(|| ApiError::Internal("a claimed task vanished".to_owned()))?;
    record(ctx, &row, task, "ai_task.claimed", &before).await?;
    tracing::info!(task.id = %task, "claimed task {task}");
    Ok(Some(Claimed { task, lease }))
}

/// Extends the lease of a held task.
pub async fn heartbeat(ctx: &WriteCtx<'_>, held: Held, lease: Lease) -> ApiResult<Uuid> {
    may_work(ctx)?;
    let mut update = Query::update();
    update.value("lease_expires_at", lease.until());
    hold(ctx, held, update, None).await
}

/// Ends the hold of a task: completed, failed, or back to the queue for a retry.
pub async fn finish(ctx: &WriteCtx<'_>, held: Held, how: Finish) -> ApiResult<Uuid> {
    may_work(ctx)?;
    let mut update = Query::update();
    update
        .value("lease_id", Value::Uuid(None))
        .value("lease_expires_at", Value::ChronoDateTimeUtc(None));
    let action = match &how {
        Finish::Complete(_) => "ai_task.completed",
        Finish::Fail { .. } => "ai_task.failed",
    };
    match how {
        Finish::Complete(output) => update
            .value("status", Status::Completed.as_str())
            .value("task_output", output)
            .value("completed_at", Utc::now()),
        Finish::Fail { error, retry } => {
            // Back to the queue while attempts remain, else failed for good.
            let again = Expr::col("attempts").lt(Expr::col("max_attempts"));
            let status = if retry {
                Expr::case(again, Status::Pending.as_str())
                    .finally(Status::Failed.as_str())
                    .into()
            } else {
                Expr::val(Status::Failed.as_str())
            };
            update.value("status", status).value("error_message", error)
        }
    };
    hold(ctx, held, update, Some(action)).await
}

/// Applies `update` to a task the caller holds under an unexpired lease, logging a state
/// change as `action`; `LEASE_LOST` when the lease is not (or no longer) the caller's,
/// `NOT_FOUND` for a task it cannot see.
async fn hold(
    ctx: &WriteCtx<'_>,
    held: Held,
    mut update: sea_orm::sea_query::UpdateStatement,
    action: Option<&'static str>,
) -> ApiResult<Uuid> {
    let table = ai_tasks()?;
    update
        .table(table.name)
        .and_where(Expr::col("id").eq(held.task))
        .and_where(Expr::col("status").eq(Status::InProgress.as_str()))
        .and_where(Expr::col("lease_id").eq(held.lease))
        .and_where(Expr::col("lease_expires_at").gt(Utc::now()))
        .cond_where(ctx.scope.write_condition(table)?)
        .returning(Query::returning().columns(["status", "clone_id", "user_id"]));
    if let Some(row) = ctx.db.query_one(&update).await? {
        match action {
            Some(action) => {
                record(ctx, &row, held.task, action, Status::InProgress.as_str()).await?;
            }
            None => {
                publish(ctx, &row, held.task)?;
            }
        }
        return Ok(held.task);
    }
    let mut select = Query::select();
    select
        .from(table.name)
        .column("id")
        .and_where(Expr::col("id").eq(held.task))
        .cond_where(ctx.scope.write_condition(table)?);
    Err(match ctx.db.query_one(&select).await? {
        None => ApiError::NotFound("AI task".to_owned()),
        Some(_) => ApiError::Refused {
            field: "input.leaseId".to_owned(),
            code: InputCode::LeaseLost,
            message: "the lease expired or another worker holds the task".to_owned(),
        },
    })
}

/// Tells subscribers of a change to `task` (`row`: its status, clone and user).
fn publish(
    ctx: &WriteCtx<'_>,
    row: &sea_orm::QueryResult,
    task: Uuid,
) -> ApiResult<(String, Uuid)> {
    let status: String = row.try_get_by_index(0)?;
    let clone: Uuid = row.try_get_by_index(1)?;
    let user: Uuid = row.try_get_by_index(2)?;
    ctx.outbox
        .record(Write::update("ai_tasks", task, Some(user)).key(clone));
    Ok((status, user))
}

/// Publishes a state change of `task` from `before` and logs it as `action`.
async fn record(
    ctx: &WriteCtx<'_>,
    row: &sea_orm::QueryResult,
    task: Uuid,
    action: &'static str,
    before: &str,
) -> ApiResult<()> {
    let (status, user) = publish(ctx, row, task)?;
    let finished = match status.as_str() {
        "completed" => Some((Severity::Success, "Task completed")),
        "failed" => Some((Severity::Error, "Task failed")),
        _ => None,
    };
    if status == Status::Completed.as_str() {
        usage::increment(ctx, user, Metric::TasksRun, 1).await?;
    }
    if let Some((severity, title)) = finished {
        let notice = Notice {
            user,
            topic: Topic::AiTask,
            severity,
            title: title.to_owned(),
            body: format!("AI task {task} is {status}."),
            data: json!({ "taskId": crate::graphql::ids::encode("AiTask", task) }),
        };
        notifications::notify(ctx, notice).await?;
    }
    activity::record(
        ctx,
        Change {
            user,
            entity_type: "ai_task",
            entity: task,
            action,
            from: json!({ "status": before }),
            to: json!({ "status": status }),
            details: None,
        },
    )
    .await
}

/// Puts tasks whose lease ran out back in the queue (or fails them when their attempts
/// are spent), as `service_role`, in one transaction with their log rows; returns the
/// writes, for the broker. Safe to run from any number of instances at once: each row
/// moves once.
pub async fn release_expired(db: &DatabaseConnection) -> ApiResult<Vec<Write>> {
    let work = ServiceWork::begin(db).await?;
    let ctx = work.ctx();
    let again = Expr::col("attempts").lt(Expr::col("max_attempts"));
    let mut update = Query::update();
    update
        .table("ai_tasks")
        .value(
            "status",
            Expr::case(again, Status::Pending.as_str()).finally(Status::Failed.as_str()),
        )
        .value("lease_id", Value::Uuid(None))
        .value("lease_expires_at", Value::ChronoDateTimeUtc(None))
        .and_where(Expr::col("status").eq(Status::InProgress.as_str()))
        .and_where(Expr::col("lease_expires_at").lt(Utc::now()))
        .returning(Query::returning().columns(["status", "clone_id", "user_id", "id"]));
    for row in ctx.db.query_all(&update).await? {
        let task: Uuid = row.try_get_by_index(3)?;
        record(
            &ctx,
            &row,
            task,
            "ai_task.lease_expired",
            Status::InProgress.as_str(),
        )
        .await?;
    }
    work.finish(true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_transition_is_decided() {
        let allowed: Vec<(Status, Status)> = Status::ALL
            .iter()
            .flat_map(|a| Status::ALL.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.may_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Status::Pending, Status::InProgress),
                (Status::InProgress, Status::Pending),
                (Status::InProgress, Status::Completed),
                (Status::InProgress, Status::Failed),
            ]
        );
    }
}
