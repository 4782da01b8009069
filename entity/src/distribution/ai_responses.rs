//! AI responses: what the AI made of one message (intent, extracted order data, suggested
//! reply), how sure it was, and what it cost (seed 003's `ai_responses`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ai_responses")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub message_id: Uuid,
    /// The model that answered, e.g. `gpt-4o-mini`.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub model: String,
    /// What the message was judged to be: `order`, `question`, `complaint`, ...
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub intent: Option<String>,
    /// The structured data the AI extracted, e.g.
    /// `{ "items": [{ "product": "...", "quantity": 2, "unit": "box" }] }`.
    #[sea_orm(column_type = "JsonBinary")]
    pub extracted_data: Json,
    /// The reply the AI suggests sending, if any.
    pub response_text: Option<String>,
    /// The AI's confidence in the extraction, from 0 to 1; low values go to a person.
    #[sea_orm(column_type = "Decimal(Some((4, 3)))")]
    pub confidence: Option<Decimal>,
    pub prompt_tokens: i32,
    pub completion_tokens: i32,
    /// What the call cost, in US dollars.
    #[sea_orm(column_type = "Decimal(Some((12, 6)))")]
    pub cost: Decimal,
    /// How long the call took, in milliseconds.
    pub latency_ms: Option<i32>,
    /// How a person judged the result: `accepted`, `edited` or `rejected`; null until
    /// reviewed. Feeds the training data.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub feedback: Option<String>,
    /// The order made from this response, if any; null once that order is deleted.
    pub order_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "message_id", to = "id")]
    pub message: BelongsTo<super::messages::Entity>,
    #[sea_orm(belongs_to, from = "order_id", to = "id")]
    pub order: BelongsTo<Option<super::orders::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
