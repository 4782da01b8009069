//! Projects: a user's folders for crawl jobs (seed 001's `projects`; columns designed).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "projects")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub name: String,
    pub description: Option<String>,
    /// `active` or `archived`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
    #[sea_orm(has_many)]
    pub crawl_jobs: HasMany<super::crawl_jobs::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
