//! An experiment's funnel counts and revenue for one variant and segment, refreshed by a
//! worker (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "results_aggregates")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub experiment_id: Uuid,
    pub variant: String,
    /// The visitor segment (e.g. `mobile`); null for all visitors.
    pub segment: Option<String>,
    /// Distinct visitors assigned to the variant.
    pub visitors: i32,
    pub views: i32,
    pub add_to_cart: i32,
    pub begin_checkout: i32,
    pub purchase: i32,
    /// Revenue from purchases attributed to the variant.
    #[sea_orm(column_type = "Decimal(Some((14, 2)))")]
    pub revenue: Decimal,
    /// Cached Bayesian statistics for the variant (posterior, credible interval).
    #[sea_orm(column_type = "JsonBinary")]
    pub posterior: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "experiment_id", to = "id")]
    pub experiment: BelongsTo<super::experiments::Entity>,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<crate::shopify::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
