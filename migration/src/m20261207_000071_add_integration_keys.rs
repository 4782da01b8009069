//! Integration API keys: an external integration (a channel provider's bridge) may hold one
//! key, stored as its SHA-256 hash, with which it delivers inbound messages to its own
//! distributor (`messageReceive`).

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::unique_index;

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "external_integrations";
const INDEX: &str = "external_integrations_api_key_hash_key";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(TABLE)
                    .add_column(string_len_null("api_key_hash", 64))
                    .to_owned(),
            )
            .await?;
        unique_index(manager, INDEX, TABLE, &["api_key_hash"]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table(TABLE).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(TABLE)
                    .drop_column("api_key_hash")
                    .to_owned(),
            )
            .await
    }
}
