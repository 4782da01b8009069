//! Customer labels: tags a distributor puts on its customers ("VIP", "late payer", ...),
//! each label once per customer (seed 003's `customer_labels`).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customer_labels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub customer_id: Uuid,
    /// The tag text; unique per customer.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub label: String,
    /// Display colour as `#RRGGBB`.
    #[sea_orm(column_type = "String(StringLen::N(7))")]
    pub color: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub distributor_id: Uuid,
    #[sea_orm(belongs_to, from = "customer_id", to = "id")]
    pub customer: BelongsTo<super::customers::Entity>,
    #[sea_orm(belongs_to, from = "distributor_id", to = "id")]
    pub distributor: BelongsTo<super::distributors::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
