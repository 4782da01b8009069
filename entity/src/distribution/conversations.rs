//! Conversations: one thread with a customer on one channel (WhatsApp, SMS or email), with
//! its unread count and last activity for the inbox (seed 003's `conversations`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "conversations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    /// `whatsapp`, `sms` or `email`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub channel: String,
    /// `open`, `closed` or `archived`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// Inbound messages nobody has read yet; never negative.
    pub unread_count: i32,
    /// When the latest message was sent or received; the inbox sorts on it.
    pub last_message_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "customer_id", to = "id")]
    pub customer: BelongsTo<super::customers::Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub messages: HasMany<super::messages::Entity>,
    #[sea_orm(has_many)]
    pub orders: HasMany<super::orders::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
