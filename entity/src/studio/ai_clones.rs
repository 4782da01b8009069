//! AI clones: a user's configured AI models (seed 002's `ai_clones`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_clones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    pub description: Option<String>,
    /// The underlying model family, e.g. `gpt-4`.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub model_type: String,
    /// `active`, `inactive`, `training` or `archived`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub status: String,
    /// JSON object of model settings (`model_version`, `temperature`, `max_tokens`, ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub config: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
    #[sea_orm(has_many)]
    pub ai_tasks: HasMany<super::ai_tasks::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
