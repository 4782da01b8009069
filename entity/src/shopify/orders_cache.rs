//! A shop's order as cached from Shopify, with its attribution (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "orders_cache")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Shopify's id of the order; unique per shop.
    pub order_id: String,
    #[sea_orm(column_type = "Decimal(Some((14, 2)))")]
    pub total: Decimal,
    #[sea_orm(column_type = "Decimal(Some((14, 2)))")]
    pub subtotal: Option<Decimal>,
    /// The number of order lines.
    pub line_count: i32,
    /// Where the order came from: `source_name`, `landing_site`, `referring_site`, and, when
    /// its `_stratix_anon_id` cart attribute names a visitor in the shop's experiments,
    /// `anon_id` and `experiments` (`[{experimentId, variant}]`).
    #[sea_orm(column_type = "JsonBinary")]
    pub attribution: Option<Json>,
    /// When the order was placed in Shopify.
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<super::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
