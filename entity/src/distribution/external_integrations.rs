//! External integrations: a distributor's connection to an outside system (WhatsApp
//! Business, Twilio, an email inbox, accounting or ERP), one per provider (seed 003's
//! `external_integrations`). Credentials are kept apart from the config, encrypted.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_integrations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The system connected, e.g. `whatsapp`, `twilio`, `quickbooks`; unique per distributor.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub provider: String,
    /// Non-secret settings (account ids, phone number ids, options); never holds secrets.
    #[sea_orm(column_type = "JsonBinary")]
    pub config: Json,
    /// The provider's credentials (API keys, tokens) as encrypted JSON; never returned to
    /// clients.
    pub secrets_enc: Option<Vec<u8>>,
    /// The SHA-256 (hex) of the integration's API key, with which it delivers inbound
    /// messages to its distributor; the key itself is shown once.
    #[sea_orm(column_type = "String(StringLen::N(64))", unique)]
    pub api_key_hash: Option<String>,
    /// `pending` (being set up), `active`, `error` or `disabled`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// When data was last exchanged successfully.
    pub last_synced_at: Option<DateTimeUtc>,
    /// What went wrong, when `status` is `error`.
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
