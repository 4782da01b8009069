//! Order products: the lines of an order (seed 003's `order_products`). Each line keeps a
//! snapshot of the product's name, SKU, unit and price, so it survives catalogue changes.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "order_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: Uuid,
    /// The catalogue product; null when it was not matched or has since been deleted.
    pub catalog_product_id: Option<Uuid>,
    /// The product's name when the line was made (or the text the AI could not match).
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub product_name: String,
    /// The product's SKU when the line was made.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub sku: Option<String>,
    /// The unit the quantity counts, e.g. `kg` or `box`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub unit: Option<String>,
    /// How many units; greater than 0, fractions allowed (2.5 kg).
    #[sea_orm(column_type = "Decimal(Some((12, 3)))")]
    pub quantity: Decimal,
    /// Price per unit when the line was made.
    #[sea_orm(column_type = "Decimal(Some((12, 2)))")]
    pub unit_price: Decimal,
    /// `quantity * unit_price`, rounded to cents, as charged.
    #[sea_orm(column_type = "Decimal(Some((12, 2)))")]
    pub line_total: Decimal,
    /// How sure the AI was that `catalog_product_id` is the product meant, from 0 to 1;
    /// null for lines entered by hand.
    #[sea_orm(column_type = "Decimal(Some((4, 3)))")]
    pub match_confidence: Option<Decimal>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "order_id", to = "id")]
    pub order: BelongsTo<super::orders::Entity>,
    #[sea_orm(belongs_to, from = "catalog_product_id", to = "id")]
    pub catalog_product: BelongsTo<Option<super::catalog_products::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
