//! `assignments` leaves the change feed on PostgreSQL (the catalog marks it unfed): a row
//! per storefront visitor, written at the storefront's rate, where a feed row and a
//! notification each would cost as much again as the assignment; admins follow the
//! experiment's results (`experimentResultsUpdated`) instead. SQLite never published it.

use sea_orm_migration::prelude::*;

use crate::secure::{leave_feed, rejoin_feed};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        leave_feed(manager, "assignments").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rejoin_feed(manager, "assignments").await
    }
}
