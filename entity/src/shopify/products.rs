//! A shop's product as cached from Shopify: seed 000's `products` merged with seed 004's
//! `products_cache` (whose `product_id` is `shopify_id` here).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Shopify's id of the product; unique per shop.
    pub shopify_id: String,
    /// The product's URL handle.
    pub handle: String,
    pub title: String,
    pub description: Option<String>,
    /// The cached Shopify product: body, variants, images, options.
    #[sea_orm(column_type = "JsonBinary")]
    pub data: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<super::shops::Entity>,
    #[sea_orm(has_many)]
    pub content_revisions: HasMany<super::content_revisions::Entity>,
    #[sea_orm(has_many)]
    pub performance_metrics: HasMany<super::performance_metrics::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
