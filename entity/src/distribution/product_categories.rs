//! Product categories: a distributor's catalogue tree; a category may sit under a parent
//! (seed 003's `product_categories`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "product_categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Unique per distributor.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    pub description: Option<String>,
    /// The enclosing category; null at the top level (and when the parent is deleted).
    pub parent_id: Option<Uuid>,
    /// Position among its siblings, ascending.
    pub sort_order: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(
        self_ref,
        relation_enum = "Parent",
        relation_reverse = "Children",
        from = "parent_id",
        to = "id"
    )]
    pub parent: BelongsTo<Option<Entity>>,
    #[sea_orm(self_ref, relation_enum = "Children", relation_reverse = "Parent")]
    pub children: HasMany<Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub catalog_products: HasMany<super::catalog_products::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
