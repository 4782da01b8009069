//! Users: the identity root every user-owned row hangs from (seed 002's `users`, standing
//! in for Supabase's `auth.users`). Inserting one makes its profile, credit account and
//! notification preferences (trigger `on_auth_user_created`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The sign-in address, stored lower-case; unique.
    #[sea_orm(unique, column_type = "String(StringLen::N(255))")]
    pub email: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: Option<String>,
    /// Argon2 PHC string; null for users who sign in through an external provider.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub password_hash: Option<String>,
    /// The user's role claim (`user` unless promoted).
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub role: String,
    /// When the user last signed in.
    pub last_login: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_one)]
    pub profile: HasOne<super::profiles::Entity>,
    #[sea_orm(has_many)]
    pub api_keys: HasMany<super::api_keys::Entity>,
    #[sea_orm(has_many)]
    pub notifications: HasMany<super::notifications::Entity>,
    #[sea_orm(has_one)]
    pub notification_preferences: HasOne<super::notification_preferences::Entity>,
    #[sea_orm(has_many)]
    pub activity_logs: HasMany<super::activity_logs::Entity>,
    #[sea_orm(has_many)]
    pub usage_metrics: HasMany<super::usage_metrics::Entity>,
    #[sea_orm(has_one)]
    pub credit_account: HasOne<crate::billing::credit_accounts::Entity>,
    #[sea_orm(has_many)]
    pub credit_transactions: HasMany<crate::billing::credit_transactions::Entity>,
    #[sea_orm(has_many)]
    pub payments: HasMany<crate::billing::payments::Entity>,
    #[sea_orm(has_many)]
    pub projects: HasMany<crate::crawling::projects::Entity>,
    #[sea_orm(has_many)]
    pub crawl_jobs: HasMany<crate::crawling::crawl_jobs::Entity>,
    #[sea_orm(has_many)]
    pub images: HasMany<crate::crawling::images::Entity>,
    #[sea_orm(has_many)]
    pub crawl_chunks: HasMany<crate::crawling::crawl_chunks::Entity>,
    #[sea_orm(has_many)]
    pub ai_clones: HasMany<crate::studio::ai_clones::Entity>,
    #[sea_orm(has_many)]
    pub ai_tasks: HasMany<crate::studio::ai_tasks::Entity>,
    #[sea_orm(has_one)]
    pub user_profile: HasOne<crate::distribution::user_profiles::Entity>,
    #[sea_orm(has_many)]
    pub user_invitations: HasMany<crate::distribution::user_invitations::Entity>,
    #[sea_orm(has_many)]
    pub data_access_audits: HasMany<crate::distribution::data_access_audits::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
