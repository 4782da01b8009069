//! User profiles: a user's membership of a distributor, with their role (seed 003's
//! `user_profiles`). A user belongs to at most one distributor; this row is how the
//! service and row-level security find it.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The member; a user is a member of a distributor once, and may be of several.
    pub user_id: Uuid,
    /// `owner`, `admin`, `member` or `viewer`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub role: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub full_name: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub phone: Option<String>,
    pub avatar_url: Option<String>,
    /// When the member last used the platform.
    pub last_active_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
