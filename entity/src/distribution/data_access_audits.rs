//! Data access audits: who read, changed or exported which record of a distributor, and
//! when (seed 003's `data_access_audits`, for GDPR). Append-only: rows are never updated.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_access_audits")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Who did it; null for the system, or once the user is deleted (the trail stays).
    pub user_id: Option<Uuid>,
    /// `read`, `create`, `update`, `delete` or `export`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub action: String,
    /// The table the record is in.
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub table_name: String,
    /// The record; null when the action covered many (an export, a list read).
    pub record_id: Option<Uuid>,
    /// Anything else worth keeping: fields changed, filter used, row count.
    #[sea_orm(column_type = "JsonBinary")]
    pub details: Json,
    /// The client's IP address (v4 or v6).
    #[sea_orm(column_type = "String(StringLen::N(45))")]
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<Option<crate::accounts::users::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
