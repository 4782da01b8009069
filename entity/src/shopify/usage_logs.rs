//! One API request made by a shop (seed 000).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "usage_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The path or GraphQL operation requested.
    pub endpoint: String,
    /// The HTTP method.
    pub method: String,
    /// The HTTP status of the response.
    pub status_code: i32,
    /// How long the request took, in milliseconds.
    pub duration_ms: i32,
    pub created_at: DateTimeUtc,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<super::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
