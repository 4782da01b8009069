//! Credit transactions: the append-only ledger of a credit account, one row per balance
//! change (seed 001's `credit_transactions`; columns designed). The database refuses
//! updates; rows are only ever inserted.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub credit_account_id: Uuid,
    /// Credits added (positive) or spent (negative); never zero.
    pub amount: i32,
    /// The account's balance right after this transaction.
    pub balance_after: i32,
    /// `signup_bonus`, `purchase`, `usage`, `refund` or `adjustment`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub kind: String,
    /// What caused it: a payment's `order_id` for purchases (unique among purchases),
    /// a crawl job's id for usage.
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub reference: Option<String>,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "credit_account_id", to = "id")]
    pub credit_account: BelongsTo<super::credit_accounts::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
