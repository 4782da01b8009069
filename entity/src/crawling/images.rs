//! Images: one image a crawl job found, with where it came from, its dimensions, format,
//! size, content hash and metadata (seed 001's `images`; columns designed).

use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "images")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub crawl_job_id: Uuid,
    /// Where the image was found on the web.
    pub url: String,
    /// The search engine or site that returned it, e.g. `google` or `bing`.
    #[sea_orm(column_type = "String(StringLen::N(50))")]
    pub source: String,
    /// Where the downloaded copy is stored, once downloaded.
    pub storage_url: Option<String>,
    #[sea_orm(column_type = "String(StringLen::N(255))")]
    pub filename: Option<String>,
    /// Width in pixels.
    pub width: Option<i32>,
    /// Height in pixels.
    pub height: Option<i32>,
    /// File format, e.g. `jpeg`, `png`, `webp`.
    #[sea_orm(column_type = "String(StringLen::N(10))")]
    pub format: Option<String>,
    /// Size in bytes.
    pub file_size: Option<i64>,
    /// SHA-256 of the file, hex; finds duplicates.
    #[sea_orm(column_type = "String(StringLen::N(64))")]
    pub content_hash: Option<String>,
    /// Whether the image passed validation.
    pub is_valid: bool,
    /// Whether an earlier image of the user has the same content hash.
    pub is_duplicate: bool,
    /// JSON array of labels a classifier gave the image.
    #[sea_orm(column_type = "JsonBinary")]
    pub labels: Json,
    /// JSON object of further details (EXIF, alt text, page title).
    #[sea_orm(column_type = "JsonBinary")]
    pub metadata: Json,
    pub downloaded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub user_id: Uuid,
    #[sea_orm(belongs_to, from = "crawl_job_id", to = "id")]
    pub crawl_job: BelongsTo<super::crawl_jobs::Entity>,
    #[sea_orm(belongs_to, from = "user_id", to = "id")]
    pub user: BelongsTo<crate::accounts::users::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
