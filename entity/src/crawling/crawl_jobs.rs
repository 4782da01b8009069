//! Crawl jobs: one image crawl in a project, split into chunks that workers run, with its
//! progress, credits and timings (seed 001's `crawl_jobs`; columns designed from its
//! "chunk tracking").

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crawl_jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub project_id: Uuid,
    #[sea_orm(column_type = "String(StringLen::N(100))")]
    pub name: String,
    /// JSON array of the search keywords.
    #[sea_orm(column_type = "JsonBinary")]
    pub keywords: Json,
    /// How many images to collect at most.
    pub max_images: i32,
    /// JSON object of crawl options (search engines, filters, sizes).
    #[sea_orm(column_type = "JsonBinary")]
    pub config: Json,
    /// `pending`, `running`, `completed`, `failed` or `cancelled`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// Percent done, 0 to 100.
    pub progress: i32,
    /// Images found so far.
    pub total_images: i32,
    /// Images downloaded so far.
    pub downloaded_images: i32,
    /// Downloaded images that passed validation.
    pub valid_images: i32,
    /// Chunks the job was split into.
    pub total_chunks: i32,
    /// Chunks a worker is running now.
    pub active_chunks: i32,
    /// Chunks finished successfully.
    pub completed_chunks: i32,
    /// Chunks that failed.
    pub failed_chunks: i32,
    /// Credits held for the job when it started.
    pub credits_reserved: i32,
    /// Credits the job has actually spent.
    pub credits_used: i32,
    /// Why the job failed, if it did.
    pub error_message: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "project_id", to = "id")]
    pub project: BelongsTo<super::projects::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
    #[sea_orm(has_many)]
    pub images: HasMany<super::images::Entity>,
    #[sea_orm(has_many)]
    pub crawl_chunks: HasMany<super::crawl_chunks::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
