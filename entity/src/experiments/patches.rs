//! A change applied to a shop's theme or product, with what undoes it; versions count up
//! per target so a rollback returns to the previous one (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "patches")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The recommendation it came from; null if applied by hand or the recommendation is gone.
    pub recommendation_id: Option<Uuid>,
    /// The target, e.g. `theme_block:trust:section_id` or `product:gid`.
    pub applied_to: String,
    /// The change that was applied.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// The change that undoes it.
    #[sea_orm(column_type = "JsonBinary")]
    pub rollback_payload: Json,
    /// Who applied it, e.g. `merchant` or `autopilot`.
    pub applied_by: String,
    pub applied_at: DateTimeUtc,
    /// The patch's number among patches of the same target, from 1; unique per target.
    pub version: i32,
    /// When it was rolled back; null while in effect.
    pub rolled_back_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "recommendation_id", to = "id")]
    pub recommendation: BelongsTo<Option<super::recommendations::Entity>>,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<crate::shopify::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
