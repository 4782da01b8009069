//! Webhook deliveries as an outbox the delivery worker works through: `event_id` names the
//! event (the same for every endpoint that receives it, for receivers to deduplicate),
//! `lease_id` proves which worker holds a claimed delivery (a secret), and `attempt_log`
//! keeps every attempt (when, HTTP status, duration, error).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            uuid_null("event_id"),
            uuid_null("lease_id"),
            json_binary("attempt_log").default("[]").take(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("webhook_deliveries")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["attempt_log", "lease_id", "event_id"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("webhook_deliveries")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
