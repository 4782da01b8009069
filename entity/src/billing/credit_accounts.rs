//! Credit accounts: a user's spendable credits, one account per user (seed 001's
//! `credit_accounts`; columns designed). Made with 100 free credits when the user is made.

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Credits available now; never below zero.
    pub balance: i32,
    /// Credits ever added (grants, purchases, refunds).
    pub lifetime_earned: i32,
    /// Credits ever spent.
    pub lifetime_spent: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(unique)]
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
    #[sea_orm(has_many)]
    pub credit_transactions: HasMany<super::credit_transactions::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
