//! Messages: every message sent or received in a conversation, and whether the AI has
//! processed it yet (seed 003's `messages`; unprocessed ones are the AI's work queue).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub conversation_id: Uuid,
    /// The conversation's customer, copied for per-customer queries; null once the
    /// customer is gone or when the sender is not known.
    pub customer_id: Option<Uuid>,
    /// `inbound` (from the customer) or `outbound` (to the customer).
    #[sea_orm(column_type = "String(StringLen::N(10))")]
    pub direction: String,
    /// `whatsapp`, `sms` or `email`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub channel: String,
    /// The text; null for a message that is only attachments.
    pub body: Option<String>,
    /// The body with the PII found in it masked (`pii_detections`); what viewers and
    /// members are meant to read. Set by the service.
    pub body_redacted: Option<String>,
    /// JSON array of media: `{ "type", "url", "mime_type", "caption" }`.
    #[sea_orm(column_type = "JsonBinary")]
    pub attachments: Json,
    /// `received` (inbound), or an outbound message's delivery state: `queued`, `sent`,
    /// `delivered`, `read` or `failed`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// Whether the AI has looked at the message (an `ai_responses` row exists or none is due).
    pub ai_processed: bool,
    /// The provider's message id (WhatsApp wamid, Twilio SID, email Message-ID); unique per
    /// distributor and channel, so a redelivered webhook is not stored twice.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub external_id: Option<String>,
    /// When the provider sent or received it; null while an outbound message is queued.
    pub sent_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "conversation_id", to = "id")]
    pub conversation: BelongsTo<super::conversations::Entity>,
    #[sea_orm(belongs_to, from = "customer_id", to = "id")]
    pub customer: BelongsTo<Option<super::customers::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub ai_responses: HasMany<super::ai_responses::Entity>,
    #[sea_orm(has_many)]
    pub pii_detections: HasMany<super::pii_detections::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
