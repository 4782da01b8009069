//! PII detections: personal data found in a message (kind and where), and whether it was
//! redacted (seed 003's `pii_detections`). The value found is never stored here.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "pii_detections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub message_id: Uuid,
    /// `email`, `phone`, `address`, `credit_card`, `national_id` or `other`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub kind: String,
    /// Where it was found: `{ "field": "body", "start": 12, "end": 28 }` (character offsets).
    #[sea_orm(column_type = "JsonBinary")]
    pub location: Json,
    /// The detector's confidence, from 0 to 1.
    #[sea_orm(column_type = "Decimal(Some((4, 3)))")]
    pub confidence: Option<Decimal>,
    /// Whether the text was masked in the message.
    pub redacted: bool,
    pub created_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "message_id", to = "id")]
    pub message: BelongsTo<super::messages::Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
