//! `crawl_chunks`: the pieces a crawl job is split into (seed 001 tracks only their counts
//! on `crawl_jobs`). A worker claims one pending chunk under a lease (`lease_id` is shown
//! once to the claimer), reports it once, and the job's counters follow; a chunk whose
//! lease runs out goes back to pending.

use sea_orm_migration::{prelude::*, schema::*};

use crate::catalog::{TableSpec, find};
use crate::ddl::{Ddl, drop_tables, foreign_key, index, sql, unique_index};
use crate::secure::{secure_table, unsecure_table};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "crawl_chunks";

fn spec() -> Result<&'static TableSpec, DbErr> {
    find(TABLE).ok_or_else(|| DbErr::Migration(format!("{TABLE} is not in the catalog")))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        manager
            .create_table(
                Table::create()
                    .table(TABLE)
                    .col(d.id())
                    .col(uuid("crawl_job_id"))
                    .col(integer("position"))
                    .col(integer("first_image"))
                    .col(integer("max_images"))
                    .col(string_len("status", 20).default("pending"))
                    .col(uuid_null("lease_id"))
                    .col(timestamp_with_time_zone_null("lease_expires_at"))
                    .col(integer("attempts").default(0))
                    .col(integer("images_found").default(0))
                    .col(integer("images_failed").default(0))
                    .col(text_null("error_message"))
                    .col(timestamp_with_time_zone_null("completed_at"))
                    .col(d.created_at())
                    .col(d.updated_at())
                    .col(uuid("user_id"))
                    .check((
                        "crawl_chunks_status_check",
                        Expr::cust(
                            "status IN ('pending', 'active', 'completed', 'failed', 'cancelled')",
                        ),
                    ))
                    .check((
                        "crawl_chunks_counts_check",
                        Expr::cust(
                            "position >= 0 AND first_image >= 0 AND max_images > 0 \
                             AND images_found >= 0 AND images_failed >= 0 AND attempts >= 0",
                        ),
                    ))
                    .foreign_key(&mut foreign_key(
                        TABLE,
                        &["crawl_job_id", "user_id"],
                        "crawl_jobs",
                        &["id", "user_id"],
                        ForeignKeyAction::Cascade,
                    ))
                    .foreign_key(&mut foreign_key(
                        TABLE,
                        &["user_id"],
                        "users",
                        &["id"],
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        unique_index(
            manager,
            "crawl_chunks_crawl_job_id_position_key",
            TABLE,
            &["crawl_job_id", "position"],
        )
        .await?;
        index(manager, "idx_crawl_chunks_user_id", TABLE, &["user_id"]).await?;
        // The workers' queue: chunks to hand out, and leases to sweep.
        sql(
            manager,
            "CREATE INDEX idx_crawl_chunks_queue ON crawl_chunks (crawl_job_id, position) \
             WHERE status IN ('pending', 'active')",
        )
        .await?;
        secure_table(manager, spec()?).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        unsecure_table(manager, spec()?).await?;
        drop_tables(manager, &[TABLE]).await
    }
}
