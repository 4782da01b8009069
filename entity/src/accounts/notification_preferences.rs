//! Notification preferences: per kind, whether a user gets email and in-app notifications
//! (seed 001's `notification_preferences`; columns designed). One row per user, made with
//! the defaults when the user is made; `system` notifications cannot be switched off.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_preferences")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Email when a crawl job finishes or fails.
    pub crawl_job_email: bool,
    /// In-app notification when a crawl job finishes or fails.
    pub crawl_job_in_app: bool,
    /// Email when an AI task finishes or fails.
    pub ai_task_email: bool,
    /// In-app notification when an AI task finishes or fails.
    pub ai_task_in_app: bool,
    /// Email about payments and credits.
    pub billing_email: bool,
    /// In-app notification about payments and credits.
    pub billing_in_app: bool,
    /// Email about sign-ins and API keys.
    pub security_email: bool,
    /// In-app notification about sign-ins and API keys.
    pub security_in_app: bool,
    /// Product news by email (opt-in).
    pub marketing_email: bool,
    /// Product news in the app (opt-in).
    pub marketing_in_app: bool,
    /// How emails are batched: `immediate`, `daily`, `weekly` or `never`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub digest_frequency: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
