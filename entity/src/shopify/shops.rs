//! An installed Shopify shop, the tenant root of the shopify and experiments domains
//! (seed 004's `shops` with seed 000's scopes).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "shops")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The shop's `*.myshopify.com` domain, lower case; unique.
    pub domain: String,
    /// The Admin API access token, encrypted by the service; never exposed.
    pub access_token_enc: Vec<u8>,
    /// The granted OAuth scopes, comma-separated as Shopify sends them.
    pub scope: Option<String>,
    /// The app plan the shop is on.
    pub plan: String,
    /// When the app was installed.
    pub installed_at: DateTimeUtc,
    /// Shop settings: brand voice, autopilot limits, data retention days, write permissions.
    #[sea_orm(column_type = "JsonBinary")]
    pub settings: Json,
    /// When the app was uninstalled; null while installed.
    pub uninstalled_at: Option<DateTimeUtc>,
    /// The shop's public key for sending storefront events without a session.
    pub ingest_key: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub products: HasMany<super::products::Entity>,
    #[sea_orm(has_many)]
    pub content_revisions: HasMany<super::content_revisions::Entity>,
    #[sea_orm(has_many)]
    pub performance_metrics: HasMany<super::performance_metrics::Entity>,
    #[sea_orm(has_many)]
    pub ai_models: HasMany<super::ai_models::Entity>,
    #[sea_orm(has_many)]
    pub usage_logs: HasMany<super::usage_logs::Entity>,
    #[sea_orm(has_many)]
    pub cache: HasMany<super::cache::Entity>,
    #[sea_orm(has_many)]
    pub events: HasMany<super::events::Entity>,
    #[sea_orm(has_many)]
    pub orders_cache: HasMany<super::orders_cache::Entity>,
    #[sea_orm(has_many)]
    pub recommendations: HasMany<crate::experiments::recommendations::Entity>,
    #[sea_orm(has_many)]
    pub patches: HasMany<crate::experiments::patches::Entity>,
    #[sea_orm(has_many)]
    pub experiments: HasMany<crate::experiments::experiments::Entity>,
    #[sea_orm(has_many)]
    pub assignments: HasMany<crate::experiments::assignments::Entity>,
    #[sea_orm(has_many)]
    pub results_aggregates: HasMany<crate::experiments::results_aggregates::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
