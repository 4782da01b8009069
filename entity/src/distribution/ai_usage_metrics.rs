//! AI usage metrics: a distributor's AI requests, tokens and cost per day, model and
//! feature (seed 003's `ai_usage_metrics`); summed per month against the AI budget.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_usage_metrics")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The day (UTC) the usage is counted for.
    pub date: Date,
    /// The model used, e.g. `gpt-4o-mini`.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub model: String,
    /// What the AI was used for: `order_extraction`, `reply_suggestion`, `pii_detection`, ...
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub feature: String,
    pub requests: i32,
    /// Requests that failed (counted in `requests` too).
    pub failed_requests: i32,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// What the day's requests cost, in US dollars.
    #[sea_orm(column_type = "Decimal(Some((12, 6)))")]
    pub cost: Decimal,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
