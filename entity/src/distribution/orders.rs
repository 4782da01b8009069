//! Orders: a customer's order, typed in by hand or built by the AI from a conversation
//! (seed 003's `orders`), with its status and total.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// The customer; a customer with orders cannot be deleted.
    pub customer_id: Uuid,
    /// The conversation the order came from, if any.
    pub conversation_id: Option<Uuid>,
    /// The distributor's own order reference; unique per distributor.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub order_number: String,
    /// `draft`, `pending`, `confirmed`, `processing`, `shipped`, `delivered` or `cancelled`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// Sum of the lines' totals; never negative.
    #[sea_orm(column_type = "Decimal(Some((12, 2)))")]
    pub total_amount: Decimal,
    /// ISO 4217 code, upper-case.
    #[sea_orm(column_type = "String(StringLen::N(3))")]
    pub currency: String,
    pub notes: Option<String>,
    /// How the order was made: `ai`, `manual`, `api` or `import`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub source: String,
    /// The day the customer wants it delivered.
    pub delivery_date: Option<Date>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "customer_id", to = "id")]
    pub customer: BelongsTo<super::customers::Entity>,
    #[sea_orm(belongs_to, from = "conversation_id", to = "id")]
    pub conversation: BelongsTo<Option<super::conversations::Entity>>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
    #[sea_orm(has_many)]
    pub order_products: HasMany<super::order_products::Entity>,
    #[sea_orm(has_many)]
    pub ai_responses: HasMany<super::ai_responses::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
