//! A cached value under a key, per shop or global when `shop_id` is null (seed 000).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The cache key; unique per shop, and among global entries.
    pub key: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub value: Json,
    /// The kind of entry, e.g. `product_analysis`.
    pub r#type: String,
    /// When the entry stops being valid; null for never.
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The owning shop; null for a global entry kept by the service.
    pub shop_id: Option<Uuid>,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<Option<super::shops::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
