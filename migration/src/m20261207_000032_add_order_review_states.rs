//! Orders made from AI responses: `needs_review` (the AI was unsure) and `fulfilled`
//! (`orderUpdateStatus`'s draft | needs_review -> confirmed -> fulfilled -> delivered).

use sea_orm_migration::prelude::*;

use crate::ddl::replace_check;

#[derive(DeriveMigrationName)]
pub struct Migration;

const BEFORE: &str = "status IN ('draft', 'pending', 'confirmed', 'processing', 'shipped', \
                      'delivered', 'cancelled')";
const AFTER: &str = "status IN ('draft', 'needs_review', 'pending', 'confirmed', 'processing', \
                     'fulfilled', 'shipped', 'delivered', 'cancelled')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_check(manager, "orders", "orders_status_check", AFTER).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        replace_check(manager, "orders", "orders_status_check", BEFORE).await
    }

    // SQLite edits its schema on one connection, inside one transaction.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }
}
