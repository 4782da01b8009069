//! Crawl chunks: one piece of a crawl job, a range of its images that one worker crawls
//! under a lease and reports once (not in seed 001, which only counts chunks on the job).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crawl_chunks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub crawl_job_id: Uuid,
    /// The chunk's place in its job, from 0.
    pub position: i32,
    /// The index of the chunk's first image within the job.
    pub first_image: i32,
    /// How many images the chunk may collect.
    pub max_images: i32,
    /// `pending`, `active`, `completed`, `failed` or `cancelled`.
    #[sea_orm(column_type = "String(StringLen::N(20))")]
    pub status: String,
    /// Proof that a worker holds the chunk; shown once, to the worker that claimed it.
    pub lease_id: Option<Uuid>,
    /// When the holder's lease runs out and the chunk returns to pending.
    pub lease_expires_at: Option<DateTimeUtc>,
    /// How many times the chunk was claimed.
    pub attempts: i32,
    /// Images the chunk's report recorded.
    pub images_found: i32,
    /// Images the worker could not download.
    pub images_failed: i32,
    /// Why the chunk failed, if it did.
    pub error_message: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "crawl_job_id", to = "id")]
    pub crawl_job: BelongsTo<super::crawl_jobs::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
