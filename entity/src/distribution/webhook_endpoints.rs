//! Webhook endpoints: URLs a distributor wants told about events (new order, status
//! change, ...), each with its own signing secret (seed 003's `webhook_endpoints`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Where deliveries are POSTed (`http://` or `https://`).
    pub url: String,
    pub description: Option<String>,
    /// The signing secret, encrypted by the service; deliveries are signed with it, so it
    /// must be recoverable (a hash would not do). Never returned to clients.
    pub secret_enc: Vec<u8>,
    /// JSON array of the event names delivered, e.g. `["order.created"]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub events: Json,
    /// Inactive endpoints get no deliveries.
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub webhook_deliveries: HasMany<super::webhook_deliveries::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
