//! Profiles: a user's public face, one per user (seed 001's `profiles`; columns designed).
//! The database makes it when the user is made, with `display_name` from `users.name`.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The name shown to others; starts as the user's `name`.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub display_name: Option<String>,
    pub avatar_url: Option<String>,
    pub bio: Option<String>,
    /// IANA time zone name, e.g. `Europe/Berlin`.
    #[sea_orm(column_type = "String(StringLen::N(64))")]
    pub timezone: String,
    /// BCP 47 language tag, e.g. `en` or `pt-BR`.
    #[sea_orm(column_type = "String(StringLen::N(16))")]
    pub locale: String,
    pub onboarding_completed: bool,
    pub onboarding_completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
