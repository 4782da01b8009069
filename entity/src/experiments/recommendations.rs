//! A suggested improvement to a shop's product, collection, theme or settings, found by a
//! rule, with its rationale and the patch that would apply it (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "recommendations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// What the recommendation is about: `product`, `collection`, `theme` or `global`.
    pub entity_type: String,
    /// The Shopify id (or other key) of that entity.
    pub entity_id: String,
    /// The kind of improvement: `trust`, `copy`, `media`, `pricing`, `variant_ux`, ...
    pub category: String,
    /// The id of the rule that produced it.
    pub rule_id: String,
    /// How much it matters.
    pub severity: String,
    /// Why it is recommended, for the merchant.
    pub rationale: String,
    /// The expected effect, e.g. `{"metric": "conversion_rate", "low": 0.01, "high": 0.05}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub expected_impact: Option<Json>,
    /// The change that applies it (block settings or product field edits).
    #[sea_orm(column_type = "JsonBinary")]
    pub patch_payload: Option<Json>,
    /// `pending`, `accepted`, `applied`, `dismissed` or `rolled_back`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<crate::shopify::shops::Entity>,
    #[sea_orm(has_many)]
    pub patches: HasMany<super::patches::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
