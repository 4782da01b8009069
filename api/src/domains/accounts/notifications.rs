//! Notifications: what workflows tell a user (a task finished or failed, credits ran low),
//! written only where the user's preferences allow it in the app, and marked read by the
//! user. `notificationAdded` subscribers hear each one after its commit.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;
use crate::tables::tables;

/// What a notification is about: its `type`, and the preference that allows it in the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// An AI task (`ai_task_in_app`).
    AiTask,
    /// A crawl job (`crawl_job_in_app`).
    CrawlJob,
    /// Credits and payments (`billing_in_app`).
    Billing,
}

impl Topic {
    fn kind(self) -> &'static str {
        match self {
            Self::AiTask => "ai_task",
            Self::CrawlJob => "crawl_job",
            Self::Billing => "billing",
        }
    }

    fn preference(self) -> &'static str {
        match self {
            Self::AiTask => "ai_task_in_app",
            Self::CrawlJob => "crawl_job_in_app",
            Self::Billing => "billing_in_app",
        }
    }
}

/// How a notification looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// Something went well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed.
    Error,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Warning => "warning",
            Self::Error => "error",
        }
    }
}

/// One notification to send.
#[derive(Clone, Debug)]
pub struct Notice {
    /// To whom.
    pub user: Uuid,
    /// About what.
    pub topic: Topic,
    /// How it looks.
    pub severity: Severity,
    /// The headline.
    pub title: String,
    /// The text.
    pub body: String,
    /// The ids a client follows (a task, a job).
    pub data: Value,
}

/// Sends `notice` in the workflow's transaction, if the user's preferences allow it in
/// the app (a user without preferences gets it). Returns the notification's id.
pub async fn notify(ctx: &WriteCtx<'_>, notice: Notice) -> ApiResult<Option<Uuid>> {
    let mut allowed = Query::select();
    allowed
        .from("notification_preferences")
        .column(notice.topic.preference())
        .and_where(Expr::col("user_id").eq(notice.user));
    if let Some(row) = ctx.db.query_one(&allowed).await?
        && !row.try_get_by_index::<bool>(0)?
    {
        return Ok(None);
    }
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("notifications")
        .columns(["id", "type", "severity", "title", "body", "data", "user_id"])
        .values([
            Expr::val(id),
            Expr::val(notice.topic.kind()),
            Expr::val(notice.severity.as_str()),
            Expr::val(notice.title),
            Expr::val(notice.body),
            Expr::val(notice.data),
            Expr::val(notice.user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("notifications", id, Some(notice.user)));
    Ok(Some(id))
}

/// Which of the signed-in user's notifications to mark read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unread {
    /// These (others' ids are ignored, as missing ones are).
    Ids(Vec<Uuid>),
    /// All of them.
    All,
}

/// The most ids one call takes.
pub const MAX_IDS: usize = 250;

/// Marks the signed-in user's unread notifications read; returns how many changed.
pub async fn mark_read(ctx: &WriteCtx<'_>, which: Unread) -> ApiResult<u64> {
    let Principal::User { id: user, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "only a signed-in user has notifications".to_owned(),
        ));
    };
    let table = tables().named("notifications")?;
    let mut update = Query::update();
    update
        .table(table.name)
        .value("read_at", Utc::now())
        .and_where(Expr::col("user_id").eq(*user))
        .and_where(Expr::col("read_at").is_null())
        .cond_where(ctx.scope.write_condition(table)?)
        .returning(Query::returning().column("id"));
    if let Unread::Ids(ids) = which {
        if ids.len() > MAX_IDS {
            return Err(ApiError::bad_input(
                "input.ids",
                format!("at most {MAX_IDS} ids"),
            ));
        }
        update.and_where(Expr::col("id").is_in(ids));
    }
    let rows = ctx.db.query_all(&update).await?;
    for row in &rows {
        let id: Uuid = row.try_get_by_index(0)?;
        ctx.outbox
            .record(Write::update("notifications", id, Some(*user)));
    }
    Ok(rows.len() as u64)
}
