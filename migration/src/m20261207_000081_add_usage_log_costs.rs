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

use crate::catalog;
use crate::ddl::postgres_only;
use crate::secure::{create_change_trigger, drop_change_trigger};

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
        postgres_only(manager, &drop_change_trigger(usage_logs()?)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(manager, &create_change_trigger(usage_logs()?)).await?;
        for column in ["status", "cost"] {
            manager
                .alter_table(Table::alter().table(TABLE).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn usage_logs() -> Result<&'static catalog::TableSpec, DbErr> {
    catalog::find(TABLE).ok_or_else(|| DbErr::Custom("usage_logs is not in the catalog".into()))
}
