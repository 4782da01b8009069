//! AI tasks: work given to an AI clone, with its input, output, status and priority (seed
//! 002's `ai_tasks`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_tasks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The clone that runs the task.
    pub clone_id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub task_name: String,
    /// JSON object the task works on (dataset, analysis type, date range, ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub task_input: Json,
    /// JSON object the task produced; `{}` until it has run.
    #[sea_orm(column_type = "JsonBinary")]
    pub task_output: Json,
    /// `pending`, `in_progress`, `completed` or `failed`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub status: String,
    /// `low`, `medium`, `high` or `urgent`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub priority: String,
    /// Why the task failed, if it did.
    pub error_message: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The lease the worker that claimed the task proves itself with (never served).
    pub lease_id: Option<Uuid>,
    /// Until when the claiming worker holds the task; past it, the task goes back to the
    /// queue.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// How many times the task was claimed.
    pub attempts: i32,
    /// The most claims before an expired or failed task fails for good.
    pub max_attempts: i32,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "clone_id", to = "id")]
    pub ai_clone: BelongsTo<super::ai_clones::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
