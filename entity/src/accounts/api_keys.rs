//! API keys: credentials for programmatic access, acting as their user within their scopes
//! (seed 001's `api_keys`; columns designed). Only a hash and a display prefix are stored,
//! never the key itself.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The owner's label for the key.
    #[sea_orm(column_type = "String(StringLen::N(200))")]
    pub name: String,
    /// The key's first characters, shown so the owner can tell keys apart.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub key_prefix: String,
    /// Hash of the whole key; requests are matched on it. Unique.
    #[sea_orm(unique, column_type = "String(StringLen::N(255))")]
    pub key_hash: String,
    /// JSON array of granted scopes, e.g. `["read"]`.
    #[sea_orm(column_type = "JsonBinary")]
    pub scopes: Json,
    pub last_used_at: Option<DateTimeUtc>,
    /// After this instant the key no longer authenticates; null means never.
    pub expires_at: Option<DateTimeUtc>,
    /// When the owner revoked the key; a revoked key never authenticates.
    pub revoked_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<super::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
