//! The AI task queue's leases (seed 002's `ai_tasks` lacks them): a worker that claims a
//! task holds it until `lease_expires_at`, proving it with `lease_id` (a secret, shown
//! once to the claimer); `attempts` counts claims, and past `max_attempts` an expired
//! task fails instead of going back to the queue.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            uuid_null("lease_id"),
            timestamp_with_time_zone_null("lease_expires_at"),
            integer("attempts").default(0).take(),
            integer("max_attempts").default(3).take(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("ai_tasks")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // The queue: what a worker may claim, oldest first.
        sql(
            manager,
            "CREATE INDEX idx_tasks_queue ON ai_tasks (created_at) \
             WHERE status IN ('pending', 'in_progress')",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql(manager, "DROP INDEX IF EXISTS idx_tasks_queue").await?;
        for column in ["max_attempts", "attempts", "lease_expires_at", "lease_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("ai_tasks")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
