//! Usage metrics: daily counters per user and metric, e.g. images processed or API calls
//! (seed 001's `usage_metrics`; columns designed). One row per user, day and metric.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The UTC day counted.
    pub date: Date,
    /// What is counted, e.g. `images_processed`, `api_calls`, `storage_bytes`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub metric: String,
    /// The day's total, in the metric's unit.
    pub value: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
