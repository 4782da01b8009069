//! Distributors: the tenant root of seed 003, a business that takes its customers' orders
//! through WhatsApp, SMS and email, with its AI settings and monthly AI budget. Every other
//! table of the domain is owned by one distributor.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "distributors")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub name: String,
    /// URL-safe lower-case handle; unique.
    #[sea_orm(unique, column_type = "String(StringLen::N(100))")]
    pub slug: String,
    /// Free-form settings (time zone, default currency, business hours, ...).
    #[sea_orm(column_type = "JsonBinary")]
    pub settings: Json,
    /// Whether incoming messages are processed by the AI at all.
    pub ai_enabled: bool,
    /// The most the distributor wants to spend on AI per calendar month; null means no cap.
    #[sea_orm(column_type = "Decimal(Some((12, 2)))")]
    pub ai_monthly_budget: Option<Decimal>,
    /// Fraction of the monthly budget (0 to 1, default 0.80) at which an alert is raised.
    #[sea_orm(column_type = "Decimal(Some((3, 2)))")]
    pub ai_budget_alert_threshold: Decimal,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(has_many)]
    pub user_profiles: HasMany<super::user_profiles::Entity>,
    #[sea_orm(has_many)]
    pub user_invitations: HasMany<super::user_invitations::Entity>,
    #[sea_orm(has_many)]
    pub customers: HasMany<super::customers::Entity>,
    #[sea_orm(has_many)]
    pub customer_labels: HasMany<super::customer_labels::Entity>,
    #[sea_orm(has_many)]
    pub conversations: HasMany<super::conversations::Entity>,
    #[sea_orm(has_many)]
    pub messages: HasMany<super::messages::Entity>,
    #[sea_orm(has_many)]
    pub ai_responses: HasMany<super::ai_responses::Entity>,
    #[sea_orm(has_many)]
    pub catalog_products: HasMany<super::catalog_products::Entity>,
    #[sea_orm(has_many)]
    pub product_categories: HasMany<super::product_categories::Entity>,
    #[sea_orm(has_many)]
    pub orders: HasMany<super::orders::Entity>,
    #[sea_orm(has_many)]
    pub order_products: HasMany<super::order_products::Entity>,
    #[sea_orm(has_many)]
    pub ai_usage_metrics: HasMany<super::ai_usage_metrics::Entity>,
    #[sea_orm(has_many)]
    pub webhook_endpoints: HasMany<super::webhook_endpoints::Entity>,
    #[sea_orm(has_many)]
    pub webhook_deliveries: HasMany<super::webhook_deliveries::Entity>,
    #[sea_orm(has_many)]
    pub external_integrations: HasMany<super::external_integrations::Entity>,
    #[sea_orm(has_many)]
    pub data_access_audits: HasMany<super::data_access_audits::Entity>,
    #[sea_orm(has_many)]
    pub pii_detections: HasMany<super::pii_detections::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
