//! What each logged API request of a shop cost and how it ended: `usage_logs.cost` (the
//! request's actual cost in throttle points) and `usage_logs.status` (`OK` or the first
//! error's code, such as `THROTTLED`), beside the seed's endpoint, method, HTTP status and
//! duration.
//!
//! `usage_logs` leaves the change feed on PostgreSQL (the catalog marks it unfed): its rows
//! come a batch at a time from the usage log writer, a feed row and a notification each
//! would cost more than the insert, and no client follows them row by row. SQLite never
//! published them.

use sea_orm_migration::{prelude::*, schema::*};

use crate::secure::{leave_feed, rejoin_feed};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "usage_logs";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column a statement: SQLite alters one thing at a time.
        manager
            .alter_table(
                Table::alter()
                    .table(TABLE)
                    .add_column(
                        integer("cost")
                            .default(0)
                            .check(Expr::col("cost").gte(0))
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TABLE)
                    .add_column(text("status").default("OK").to_owned())
                    .to_owned(),
            )
            .await?;
        leave_feed(manager, TABLE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        rejoin_feed(manager, TABLE).await?;
        for column in ["status", "cost"] {
            manager
                .alter_table(Table::alter().table(TABLE).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
