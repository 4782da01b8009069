//! Activity logs: what happened to which record, and who did it (seed 002's
//! `activity_logs`, which seed 001 also names). The service writes them for audits; a log
//! outlives its user (`user_id` becomes null).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activity_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The kind of record the entry is about, e.g. `ai_task` or `payment`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub log_type: String,
    /// The id of the record the entry is about.
    pub entity_id: Uuid,
    /// What happened, e.g. `status_changed`.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub action: String,
    /// JSON object with the particulars (previous and new state, changed fields, ip).
    #[sea_orm(column_type = "JsonBinary")]
    pub details: Json,
    /// `debug`, `info`, `warning`, `error` or `critical`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub level: String,
    pub created_at: DateTimeUtc,
    /// The acting user; null once that user is deleted.
    pub user_id: Option<Uuid>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<Option<super::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
