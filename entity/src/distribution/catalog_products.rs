//! Catalogue products: what a distributor sells, with the synonyms the AI matches order
//! text against (seed 003's `products`, renamed: the Shopify domain owns `products`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "catalog_products")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Stock-keeping unit; unique per distributor.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub sku: String,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    pub description: Option<String>,
    /// The unit the price is for: `unit`, `kg`, `box`, `case`, ...
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub unit: String,
    /// Price per unit in the distributor's currency; never negative.
    #[sea_orm(column_type = "Decimal(Some((12, 2)))")]
    pub price: Decimal,
    /// Null when uncategorised (or the category was deleted).
    pub category_id: Option<Uuid>,
    /// Inactive products are kept for old orders but not offered or matched.
    pub active: bool,
    /// JSON array of other names customers use for the product, for AI matching.
    #[sea_orm(column_type = "JsonBinary")]
    pub synonyms: Json,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "category_id", to = "id")]
    pub category: BelongsTo<Option<super::product_categories::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub order_products: HasMany<super::order_products::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
