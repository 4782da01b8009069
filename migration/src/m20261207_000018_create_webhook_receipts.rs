//! `webhook_receipts`: the callbacks received from outside services (Shopify's), one row
//! per delivery id, written in the transaction of what the callback changed: a delivery
//! Shopify retries is acknowledged once and applied once. Infrastructure like
//! `idempotency_keys`, not tenant data: not in the catalog.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{index, postgres_only};
use crate::m20261122_000011_create_app_role::APP_ROLE;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The table.
pub const WEBHOOK_RECEIPTS: &str = "webhook_receipts";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WEBHOOK_RECEIPTS)
                    .col(string_len("source", 32))
                    .col(string_len("delivery_id", 255))
                    .col(string_len("topic", 64))
                    .col(string_len("shop_domain", 255))
                    .col(timestamp_with_time_zone("received_at"))
                    .primary_key(Index::create().col("source").col("delivery_id"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_webhook_receipts_received_at",
            WEBHOOK_RECEIPTS,
            &["received_at"],
        )
        .await?;
        postgres_only(
            manager,
            &format!("GRANT SELECT, INSERT, DELETE ON {WEBHOOK_RECEIPTS} TO {APP_ROLE};"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(WEBHOOK_RECEIPTS).if_exists().to_owned())
            .await
    }
}
