//! Customers: the businesses and people a distributor sells to and talks with (seed 003's
//! `customers`), with their contact details on each channel and a risk score.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The contact person's name.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    /// The customer's business (shop, restaurant, ...), if any.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub business_name: Option<String>,
    /// Phone number in E.164 form; inbound SMS is matched on it.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub phone: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub email: Option<String>,
    /// The customer's WhatsApp id (wa_id); unique per distributor.
    #[sea_orm(column_type = "String(StringLen::N(64))")]
    pub whatsapp_id: Option<String>,
    /// Delivery address as an object (`line1`, `line2`, `city`, `region`, `postal_code`,
    /// `country`).
    #[sea_orm(column_type = "JsonBinary")]
    pub address: Option<Json>,
    /// Payment or fraud risk from 0 (none) to 100; null until assessed.
    pub risk_score: Option<i32>,
    /// The distributor's notes about the customer.
    pub notes: Option<String>,
    /// When the customer last placed an order; kept by the service.
    pub last_order_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub customer_labels: HasMany<super::customer_labels::Entity>,
    #[sea_orm(has_many)]
    pub conversations: HasMany<super::conversations::Entity>,
    #[sea_orm(has_many)]
    pub messages: HasMany<super::messages::Entity>,
    #[sea_orm(has_many)]
    pub orders: HasMany<super::orders::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
