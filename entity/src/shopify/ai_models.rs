//! An AI model configuration (seed 000): a shop's own, or a global one when `shop_id` is null.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_models")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    pub version: String,
    /// The model's settings (provider, parameters, prompts).
    #[sea_orm(column_type = "JsonBinary")]
    pub config: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The owning shop; null for a global model every shop may read.
    pub shop_id: Option<Uuid>,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<Option<super::shops::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
