//! Payments get the provider's `approved` state (created -> approved -> completed | failed,
//! completed -> refunded), and the credits ledger gets the two kinds a crawl job needs:
//! a `reservation` takes credits when the job is made, a `release` gives back what it did
//! not use. Both only widen a CHECK, so every existing row stays valid.

use sea_orm_migration::prelude::*;

use crate::ddl::replace_check;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, constraint, before, after).
const CHECKS: &[(&str, &str, &str, &str)] = &[
    (
        "payments",
        "payments_status_check",
        "status IN ('created', 'pending', 'completed', 'failed', 'refunded', 'cancelled')",
        "status IN ('created', 'pending', 'approved', 'completed', 'failed', 'refunded', 'cancelled')",
    ),
    (
        "credit_transactions",
        "credit_transactions_kind_check",
        "kind IN ('signup_bonus', 'purchase', 'usage', 'refund', 'adjustment')",
        "kind IN ('signup_bonus', 'purchase', 'usage', 'refund', 'adjustment', 'reservation', 'release')",
    ),
    (
        "credit_transactions",
        "credit_transactions_amount_check",
        "amount <> 0 AND (kind NOT IN ('signup_bonus', 'purchase') OR amount > 0) \
         AND (kind <> 'usage' OR amount < 0)",
        "amount <> 0 AND (kind NOT IN ('signup_bonus', 'purchase', 'release') OR amount > 0) \
         AND (kind NOT IN ('usage', 'reservation') OR amount < 0)",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, _, after) in CHECKS {
            replace_check(manager, table, name, after).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, name, before, _) in CHECKS {
            replace_check(manager, table, name, before).await?;
        }
        Ok(())
    }

    // SQLite edits its schema on one connection, inside one transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
