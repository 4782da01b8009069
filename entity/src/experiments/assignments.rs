//! The variant a visitor was given in an experiment; one per visitor and experiment, so
//! the visitor keeps seeing the same variant (seed 004).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "assignments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub experiment_id: Uuid,
    /// The anonymous visitor's id; unique per experiment.
    pub anon_id: String,
    /// The session in which the visitor was assigned.
    pub session_id: String,
    pub variant: String,
    pub assigned_at: DateTimeUtc,
    /// When the visitor first saw the experiment (their first exposure event).
    pub exposed_at: Option<DateTimeUtc>,
    /// When the exposed visitor first purchased.
    pub converted_at: Option<DateTimeUtc>,
    /// The visitor's segment (the exposure's `props.device`), for per-segment results.
    #[sea_orm(column_type = "String(StringLen::N(32))")]
    pub segment: Option<String>,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "experiment_id", to = "id")]
    pub experiment: BelongsTo<super::experiments::Entity>,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<crate::shopify::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
