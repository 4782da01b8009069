//! The crawling domain: seed 001's `projects`, `crawl_jobs` (with chunk tracking) and
//! `images`. Seed 001 names these tables without columns; they are designed here from its
//! text, and docs/schema/crawling.md says which.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_projects(manager, d).await?;
        create_crawl_jobs(manager, d).await?;
        create_images(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &["images", "crawl_jobs", "projects"]).await
    }
}

async fn create_projects(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("projects")
                .col(d.id())
                .col(string_len("name", 100))
                .col(text_null("description"))
                .col(string_len("status", 20).default("active"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "projects_status_check",
                    Expr::cust("status IN ('active', 'archived')"),
                ))
                .foreign_key(&mut foreign_key(
                    "projects",
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
        "projects_id_user_id_key",
        "projects",
        &["id", "user_id"],
    )
    .await?;
    index(manager, "idx_projects_user_id", "projects", &["user_id"]).await
}

async fn create_crawl_jobs(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("crawl_jobs")
                .col(d.id())
                .col(uuid("project_id"))
                .col(string_len("name", 100))
                .col(json_binary("keywords").default("[]"))
                .col(integer("max_images").default(1000))
                .col(json_binary("config").default("{}"))
                .col(string_len("status", 20).default("pending"))
                .col(integer("progress").default(0))
                .col(integer("total_images").default(0))
                .col(integer("downloaded_images").default(0))
                .col(integer("valid_images").default(0))
                .col(integer("total_chunks").default(0))
                .col(integer("active_chunks").default(0))
                .col(integer("completed_chunks").default(0))
                .col(integer("failed_chunks").default(0))
                .col(integer("credits_reserved").default(0))
                .col(integer("credits_used").default(0))
                .col(text_null("error_message"))
                .col(timestamp_with_time_zone_null("started_at"))
                .col(timestamp_with_time_zone_null("completed_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "crawl_jobs_status_check",
                    Expr::cust(
                        "status IN ('pending', 'running', 'completed', 'failed', 'cancelled')",
                    ),
                ))
                .check(("crawl_jobs_max_images_check", Expr::cust("max_images > 0")))
                .check((
                    "crawl_jobs_progress_check",
                    Expr::cust("progress BETWEEN 0 AND 100"),
                ))
                .check((
                    "crawl_jobs_images_check",
                    Expr::cust(
                        "total_images >= 0 AND downloaded_images >= 0 AND valid_images >= 0 \
                         AND valid_images <= downloaded_images",
                    ),
                ))
                // Every chunk is in at most one of active, completed and failed.
                .check((
                    "crawl_jobs_chunks_check",
                    Expr::cust(
                        "active_chunks >= 0 AND completed_chunks >= 0 AND failed_chunks >= 0 \
                         AND active_chunks + completed_chunks + failed_chunks <= total_chunks",
                    ),
                ))
                .check((
                    "crawl_jobs_credits_check",
                    Expr::cust("credits_reserved >= 0 AND credits_used >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "crawl_jobs",
                    &["project_id", "user_id"],
                    "projects",
                    &["id", "user_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "crawl_jobs",
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
        "crawl_jobs_id_user_id_key",
        "crawl_jobs",
        &["id", "user_id"],
    )
    .await?;
    index(
        manager,
        "idx_crawl_jobs_project_id",
        "crawl_jobs",
        &["project_id"],
    )
    .await?;
    index(
        manager,
        "idx_crawl_jobs_user_id",
        "crawl_jobs",
        &["user_id"],
    )
    .await?;
    index(manager, "idx_crawl_jobs_status", "crawl_jobs", &["status"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_crawl_jobs_created_at ON crawl_jobs (created_at DESC)",
    )
    .await?;
    // The workers' queue: jobs still to run or running.
    sql(
        manager,
        "CREATE INDEX idx_crawl_jobs_active ON crawl_jobs (created_at) \
         WHERE status IN ('pending', 'running')",
    )
    .await
}

async fn create_images(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("images")
                .col(d.id())
                .col(uuid("crawl_job_id"))
                .col(text("url"))
                .col(string_len("source", 50))
                .col(text_null("storage_url"))
                .col(string_len_null("filename", 255))
                .col(integer_null("width"))
                .col(integer_null("height"))
                .col(string_len_null("format", 10))
                .col(big_integer_null("file_size"))
                .col(string_len_null("content_hash", 64))
                .col(boolean("is_valid").default(true))
                .col(boolean("is_duplicate").default(false))
                .col(json_binary("labels").default("[]"))
                .col(json_binary("metadata").default("{}"))
                .col(timestamp_with_time_zone_null("downloaded_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "images_dimensions_check",
                    Expr::cust("(width IS NULL OR width > 0) AND (height IS NULL OR height > 0)"),
                ))
                .check((
                    "images_file_size_check",
                    Expr::cust("file_size IS NULL OR file_size >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "images",
                    &["crawl_job_id", "user_id"],
                    "crawl_jobs",
                    &["id", "user_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "images",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_images_crawl_job_id",
        "images",
        &["crawl_job_id"],
    )
    .await?;
    index(manager, "idx_images_user_id", "images", &["user_id"]).await?;
    // Duplicate detection looks a hash up across the user's images.
    index(
        manager,
        "idx_images_content_hash",
        "images",
        &["content_hash"],
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_images_created_at ON images (created_at DESC)",
    )
    .await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_images_metadata ON images USING GIN (metadata)",
    )
    .await
}
