//! `idempotency_keys`: the answers to mutation requests sent with an `Idempotency-Key`
//! header, per principal, so a retried request returns the first answer instead of writing
//! twice. Infrastructure like `change_events`, not tenant data: not in the catalog; each
//! row is keyed by its principal, and the request role may read and write it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{index, postgres_only};
use crate::m20261122_000011_create_app_role::APP_ROLE;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The table.
pub const IDEMPOTENCY_KEYS: &str = "idempotency_keys";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IDEMPOTENCY_KEYS)
                    .col(string_len("principal", 64))
                    .col(string_len("key", 255))
                    .col(string_len("request_hash", 64))
                    .col(text_null("response"))
                    .col(timestamp_with_time_zone("created_at"))
                    .primary_key(Index::create().col("principal").col("key"))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_idempotency_keys_created_at",
            IDEMPOTENCY_KEYS,
            &["created_at"],
        )
        .await?;
        postgres_only(
            manager,
            &format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {IDEMPOTENCY_KEYS} TO {APP_ROLE};"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IDEMPOTENCY_KEYS).if_exists().to_owned())
            .await
    }
}
