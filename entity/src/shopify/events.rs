//! One storefront event of a shop's visitor (seed 004's `events`; seed 000's `type` and
//! `data` are `event_type` and `props`). Partitioned by month of `ts` on PostgreSQL.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// The event's id. On PostgreSQL the table's key is `(id, ts)`, as partitioning needs.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The anonymous visitor's id, stable across sessions.
    pub anon_id: String,
    pub session_id: String,
    /// What happened: `page_view`, `add_to_cart`, `purchase`, `exposure`, ...
    pub event_type: String,
    /// When the event happened.
    pub ts: DateTimeUtc,
    /// The event's details (url, value, currency, cart token, ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub props: Json,
    /// Shopify's id of the product concerned, if any.
    pub product_id: Option<String>,
    /// The experiment the visitor was exposed to, if any.
    pub experiment_id: Option<String>,
    /// The experiment variant the visitor saw, if any.
    pub variant: Option<String>,
    /// The order events arrived in: counting readers keep their place by it.
    pub seq: i64,
    pub shop_id: Uuid,
    #[sea_orm(belongs_to, from = "shop_id", to = "id")]
    pub shop: BelongsTo<super::shops::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
