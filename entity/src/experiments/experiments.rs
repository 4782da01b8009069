//! An A/B experiment on a shop's storefront: its variants, traffic allocation, primary
//! metric, guardrails and lifecycle (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "experiments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// Where it runs, e.g. `product_page:cta` or `block:trust`.
    pub target: String,
    /// Each variant's share of traffic, e.g. `{"control": 0.5, "variant_a": 0.5}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub allocation: Json,
    /// Each variant's configuration, e.g. `{"control": {"config": {}}, ...}`.
    #[sea_orm(column_type = "JsonBinary")]
    pub variants: Json,
    /// When it started; null for a draft.
    pub started_at: Option<DateTimeUtc>,
    /// When it ended; null while not ended.
    pub ended_at: Option<DateTimeUtc>,
    /// The metric that decides the winner, e.g. `purchase_rate`.
    pub primary_metric: String,
    /// Stop rules: `{"max_duration_days": 1..365, "min_sample": >= 0}`, nothing else; a
    /// running experiment is completed once it has run `max_duration_days`.
    #[sea_orm(column_type = "JsonBinary")]
    pub guardrails: Json,
    /// `draft`, `running`, `paused`, `completed` or `archived`.
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<crate::shopify::shops::Entity>,
    #[sea_orm(has_many)]
    pub assignments: HasMany<super::assignments::Entity>,
    #[sea_orm(has_many)]
    pub results_aggregates: HasMany<super::results_aggregates::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
