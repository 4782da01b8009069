//! Notifications: messages to a user's in-app inbox (seed 001's `notifications`; columns
//! designed). Unread while `read_at` is null.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The kind: `system`, `crawl_job`, `ai_task`, `billing`, `security` or `marketing`.
    #[sea_orm(column_name = "type", column_type = "String(StringLen::N(50))")]
    pub r#type: String,
    /// How it is shown: `info`, `success`, `warning` or `error`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub severity: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub title: String,
    pub body: String,
    /// JSON object with what the notification is about (ids, figures).
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    /// Where the notification's action button leads, if it has one.
    pub action_url: Option<String>,
    /// When the user read it; null while unread.
    pub read_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
