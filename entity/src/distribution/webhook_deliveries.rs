//! Webhook deliveries: one event sent to one endpoint, with its attempts, the last
//! response and when to retry (seed 003's `webhook_deliveries`, the delivery log).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub endpoint_id: Uuid,
    /// The event name, e.g. `order.created`.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub event: String,
    /// The JSON body sent.
    #[sea_orm(column_type = "JsonBinary")]
    pub payload: Json,
    /// `pending` (to be tried at `next_attempt_at`), `succeeded` or `failed` (given up).
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// How many times sending was tried.
    pub attempts: i32,
    /// The HTTP status of the last attempt; null if none got a response.
    pub status_code: Option<i32>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the next attempt is due; null when none is.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// When the endpoint accepted it.
    pub delivered_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    pub event_id: Option<Uuid>,
    pub lease_id: Option<Uuid>,
    #[sea_orm(column_type = "JsonBinary")]
    pub attempt_log: Json,
    #[sea_orm(belongs_to, from = "endpoint_id", to = "id")]
    pub endpoint: BelongsTo<super::webhook_endpoints::Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
