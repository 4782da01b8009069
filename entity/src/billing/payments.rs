//! Payments: one record per checkout order, following its status lifecycle (seed 002's
//! `payments`). A completed payment may grant credits; the record outlives its user.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The payment provider's order id; unique.
    #[sea_orm(unique, column_type = "String(StringLen::N(255))")]
    pub order_id: String,
    /// The amount charged, in `currency`.
    #[sea_orm(column_type = "Decimal(Some((10, 2)))")]
    pub amount: Decimal,
    /// ISO 4217 code, e.g. `USD`.
    #[sea_orm(column_type = "String(StringLen::N(10))")]
    pub currency: String,
    /// `created`, `pending`, `completed`, `failed`, `refunded` or `cancelled`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub status: String,
    pub description: Option<String>,
    /// The provider used, e.g. `paypal`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub payment_method: String,
    /// JSON object with invoice details (customer name, invoice number, tax, discount).
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    /// When the payment completed.
    pub completed_at: Option<DateTimeUtc>,
    /// Credits added to the user's account for this payment, once completed.
    pub credits_granted: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The paying user; null once that user is deleted.
    pub user_id: Option<Uuid>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<Option<crate::accounts::users::Entity>>,
}

impl ActiveModelBehavior for ActiveModel {}
