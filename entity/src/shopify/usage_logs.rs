//! One API request made by a shop (seed 000), written in batches off the request path.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The GraphQL operation requested (its name, `anonymous`, or `batch`).
    pub endpoint: String,
    /// The HTTP method (`POST`, `GET`), or `WS` for an operation over a WebSocket.
    pub method: String,
    /// The HTTP status of the response (200 for WebSocket operations).
    pub status_code: i32,
    /// How long the request took, in milliseconds.
    pub duration_ms: i32,
    /// The request's actual cost in throttle points (0 when it did not run).
    pub cost: i32,
    /// `OK`, or the code of the first error (`THROTTLED`, `NOT_FOUND`...).
    pub status: String,
    pub created_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<super::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
