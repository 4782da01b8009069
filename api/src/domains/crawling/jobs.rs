//! Crawl jobs: made with their chunks and their credit reservation, cancelled, settled.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::accounts::activity::{self, Change};
use crate::domains::accounts::notifications::{self, Notice, Severity, Topic};
use crate::domains::accounts::usage::{self, Metric};
use crate::domains::billing::credits::{self, Amount, Entry, Reference};
use crate::domains::{WriteCtx, invalid_transition};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// The most images one job may collect.
pub const MAX_IMAGES: i64 = 100_000;
/// Images per chunk unless the config says otherwise.
pub const DEFAULT_CHUNK_SIZE: i64 = 100;
/// The most chunks a job is split into.
pub const MAX_CHUNKS: i64 = 1_000;
/// Rows a single `INSERT` of chunks carries.
const CHUNK_ROWS_PER_INSERT: usize = 500;

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Made; no chunk claimed yet.
    Pending,
    /// A worker claimed a chunk.
    Running,
    /// Every chunk is in, and at least one succeeded.
    Completed,
    /// Every chunk is in, and all of them failed.
    Failed,
    /// Stopped by its user.
    Cancelled,
}

impl Status {
    /// The state as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// The states in which chunks are handed out.
    pub const OPEN: [&'static str; 2] = ["pending", "running"];
}

/// A crawl's options: the documented shape of `crawl_jobs.config`. Unknown keys are
/// refused, so a misspelt option is an error rather than silently ignored.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Pages to start from, `http(s)://` URLs (at most 100).
    pub start_urls: Vec<String>,
    /// Where to search (`google`, `bing`, `duckduckgo`, `flickr`, `unsplash`).
    pub sources: Vec<String>,
    /// Image formats to keep (`jpeg`, `png`, `webp`, `gif`); any when empty.
    pub formats: Vec<String>,
    /// Smallest width and height to keep, in pixels.
    pub min_width: Option<i64>,
    /// See `min_width`.
    pub min_height: Option<i64>,
    /// Images per chunk, 1 to 10,000.
    pub chunk_size: i64,
}

const SOURCES: [&str; 5] = ["google", "bing", "duckduckgo", "flickr", "unsplash"];
const FORMATS: [&str; 4] = ["jpeg", "png", "webp", "gif"];

impl Config {
    /// Checks `value`, given as input `field` (absent: the defaults).
    pub fn parse(field: &str, value: Option<&Value>) -> ApiResult<Self> {
        let empty = Map::new();
        let object = match value {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(object)) => object,
            Some(_) => return Err(ApiError::bad_input(field, "must be an object")),
        };
        let at = |key: &str| format!("{field}.{key}");
        if let Some(key) = object.keys().find(|k| {
            ![
                "startUrls",
                "sources",
                "formats",
                "minWidth",
                "minHeight",
                "chunkSize",
            ]
            .contains(&k.as_str())
        }) {
            return Err(ApiError::bad_input(
                at(key),
                "is not an option: startUrls, sources, formats, minWidth, minHeight, chunkSize",
            ));
        }
        let start_urls = strings(&at("startUrls"), object.get("startUrls"), 100)?;
        if let Some(bad) = start_urls.iter().find(|u| !is_web_url(u)) {
            return Err(ApiError::bad_input(
                at("startUrls"),
                format!("{bad:?} is not an http(s) URL"),
            ));
        }
        let sources = strings(&at("sources"), object.get("sources"), SOURCES.len())?;
        if let Some(bad) = sources.iter().find(|s| !SOURCES.contains(&s.as_str())) {
            return Err(ApiError::bad_input(
                at("sources"),
                format!("{bad:?} is not one of {}", SOURCES.join(", ")),
            ));
        }
        let formats = strings(&at("formats"), object.get("formats"), FORMATS.len())?;
        if let Some(bad) = formats.iter().find(|f| !FORMATS.contains(&f.as_str())) {
            return Err(ApiError::bad_input(
                at("formats"),
                format!("{bad:?} is not one of {}", FORMATS.join(", ")),
            ));
        }
        let whole = |key: &str, range: std::ops::RangeInclusive<i64>| -> ApiResult<Option<i64>> {
            match object.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .filter(|n| range.contains(n))
                    .map(Some)
                    .ok_or_else(|| {
                        ApiError::bad_input(
                            at(key),
                            format!(
                                "must be a whole number from {} to {}",
                                range.start(),
                                range.end()
                            ),
                        )
                    }),
            }
        };
        Ok(Self {
            start_urls,
            sources,
            formats,
            min_width: whole("minWidth", 1..=100_000)?,
            min_height: whole("minHeight", 1..=100_000)?,
            chunk_size: whole("chunkSize", 1..=10_000)?.unwrap_or(DEFAULT_CHUNK_SIZE),
        })
    }

    /// The config as stored.
    pub fn to_json(&self) -> Value {
        json!({
            "startUrls": self.start_urls,
            "sources": self.sources,
            "formats": self.formats,
            "minWidth": self.min_width,
            "minHeight": self.min_height,
            "chunkSize": self.chunk_size,
        })
    }
}

/// Whether `url` is an absolute `http(s)://` URL with a host.
pub fn is_web_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.and_then(|r| r.split(['/', '?', '#']).next())
        .is_some_and(|host| !host.is_empty() && !host.contains(char::is_whitespace))
        && url.len() <= 2048
}

/// A list of at most `max` non-blank strings of at most 200 characters.
fn strings(field: &str, value: Option<&Value>, max: usize) -> ApiResult<Vec<String>> {
    let list = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.len() <= max => list,
        Some(_) => {
            return Err(ApiError::bad_input(
                field,
                format!("must be a list of at most {max} strings"),
            ));
        }
    };
    list.iter()
        .map(|v| match v.as_str().map(str::trim) {
            Some(s) if !s.is_empty() && s.chars().count() <= 2048 => Ok(s.to_owned()),
            _ => Err(ApiError::bad_input(field, "must hold non-blank strings")),
        })
        .collect()
}

/// A new crawl job in one of the signed-in user's projects.
#[derive(Clone, Debug)]
pub struct NewJob {
    /// `projects.id`.
    pub project: Uuid,
    /// 1 to 100 characters.
    pub name: String,
    /// What to search for (at most 50).
    pub keywords: Vec<String>,
    /// 1 to [`MAX_IMAGES`]; a credit each is reserved.
    pub max_images: i32,
    /// The crawl's options.
    pub config: Config,
}

impl NewJob {
    /// Checks the parts given as `input.<field>`.
    pub fn parse(
        project: Uuid,
        name: &str,
        keywords: Option<&Value>,
        max_images: i64,
        config: Option<&Value>,
    ) -> ApiResult<Self> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(ApiError::bad_input(
                "input.name",
                "must be 1 to 100 characters",
            ));
        }
        if !(1..=MAX_IMAGES).contains(&max_images) {
            return Err(ApiError::bad_input(
                "input.maxImages",
                format!("must be 1 to {MAX_IMAGES}"),
            ));
        }
        let keywords = strings("input.keywords", keywords, 50)?;
        let config = Config::parse("input.config", config)?;
        if keywords.is_empty() && config.start_urls.is_empty() {
            return Err(ApiError::bad_input(
                "input.keywords",
                "give keywords, or start URLs in config.startUrls",
            ));
        }
        let chunks = (max_images + config.chunk_size - 1) / config.chunk_size;
        if chunks > MAX_CHUNKS {
            return Err(ApiError::bad_input(
                "input.config.chunkSize",
                format!("splits the job into {chunks} chunks; at most {MAX_CHUNKS}"),
            ));
        }
        Ok(Self {
            project,
            name: name.to_owned(),
            keywords,
            max_images: i32::try_from(max_images).unwrap_or(i32::MAX),
            config,
        })
    }
}

/// The ledger reference of a job's credits.
fn reference(job: Uuid) -> ApiResult<Option<Reference>> {
    Reference::parse("reference", &format!("crawl_job:{job}")).map(Some)
}

/// Makes a crawl job in a project of the signed-in user: reserves a credit per image it
/// may collect (`INSUFFICIENT_CREDITS` when short) and splits it into chunks.
pub async fn create(ctx: &WriteCtx<'_>, input: NewJob) -> ApiResult<Uuid> {
    let Principal::User { id: user, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "a crawl job is made by a signed-in user".to_owned(),
        ));
    };
    let projects = tables().named("projects")?;
    let mut project = Query::select();
    project
        .from(projects.name)
        .column("id")
        .and_where(Expr::col("id").eq(input.project))
        .cond_where(ctx.scope.write_condition(projects)?);
    if ctx.db.query_one(&project).await?.is_none() {
        return Err(ApiError::refused(
            "input.projectId",
            InputCode::NotFound,
            "no such project",
        ));
    }
    let id = Uuid::new_v4();
    let size = input.config.chunk_size;
    let total = (i64::from(input.max_images) + size - 1) / size;
    let mut insert = Query::insert();
    insert
        .into_table("crawl_jobs")
        .columns([
            "id",
            "project_id",
            "name",
            "keywords",
            "max_images",
            "config",
            "total_chunks",
            "credits_reserved",
            "user_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(input.project),
            Expr::val(input.name),
            Expr::val(json!(input.keywords)),
            Expr::val(input.max_images),
            Expr::val(input.config.to_json()),
            Expr::val(total as i32),
            Expr::val(input.max_images),
            Expr::val(*user),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    let amount = Amount::parse("input.maxImages", input.max_images.into())?;
    credits::post(ctx, *user, Entry::Reserve, amount, reference(id)?)
        .await
        .map_err(|e| e.at("input.maxImages"))?;
    insert_chunks(ctx, id, *user, input.max_images.into(), size).await?;
    ctx.outbox
        .record(Write::insert("crawl_jobs", id, Some(*user)).key(input.project));
    log(ctx, *user, id, "crawl_job.created", None, Status::Pending).await?;
    Ok(id)
}

/// Writes the chunks of a job of `max_images`, `size` images each (the last one less).
async fn insert_chunks(
    ctx: &WriteCtx<'_>,
    job: Uuid,
    user: Uuid,
    max_images: i64,
    size: i64,
) -> ApiResult<()> {
    let firsts: Vec<i64> = (0..max_images).step_by(size as usize).collect();
    for (batch, starts) in firsts.chunks(CHUNK_ROWS_PER_INSERT).enumerate() {
        let mut insert = Query::insert();
        insert.into_table("crawl_chunks").columns([
            "id",
            "crawl_job_id",
            "position",
            "first_image",
            "max_images",
            "user_id",
        ]);
        for (i, first) in starts.iter().enumerate() {
            let position = batch * CHUNK_ROWS_PER_INSERT + i;
            insert
                .values([
                    Expr::val(Uuid::new_v4()),
                    Expr::val(job),
                    Expr::val(position as i32),
                    Expr::val(*first as i32),
                    Expr::val(Ord::min(size, max_images - first) as i32),
                    Expr::val(user),
                ])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        ctx.db.execute(&insert).await?;
    }
    Ok(())
}

/// Cancels a pending or running job (its user, or `service_role`): no chunk is handed out
/// or accepted any more, and the credits not used are released.
pub async fn cancel(ctx: &WriteCtx<'_>, job: Uuid) -> ApiResult<Uuid> {
    if !matches!(ctx.principal, Principal::User { .. } | Principal::Service) {
        return Err(ApiError::Forbidden(
            "a crawl job is cancelled by its user".to_owned(),
        ));
    }
    let jobs = tables().named("crawl_jobs")?;
    let chunks = tables().named("crawl_chunks")?;
    // Chunks first, then the job: the order claims and reports lock in.
    let mut stop = Query::update();
    stop.table(chunks.name)
        .value("status", "cancelled")
        .value("lease_id", sea_orm::Value::Uuid(None))
        .value("lease_expires_at", sea_orm::Value::ChronoDateTimeUtc(None))
        .and_where(Expr::col("crawl_job_id").eq(job))
        .and_where(Expr::col("status").is_in(["pending", "active"]))
        .cond_where(ctx.scope.write_condition(chunks)?);
    ctx.db.execute(&stop).await?;
    let mut select = Query::select();
    select
        .from(jobs.name)
        .column("status")
        .and_where(Expr::col("id").eq(job))
        .cond_where(ctx.scope.write_condition(jobs)?)
        .lock(LockType::Update);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::NotFound("crawl job".to_owned()));
    };
    let before: String = row.try_get_by_index(0)?;
    if !Status::OPEN.contains(&before.as_str()) {
        return Err(invalid_transition("job", &before, "be cancelled"));
    }
    let mut update = Query::update();
    update
        .table(jobs.name)
        .value("status", Status::Cancelled.as_str())
        .value("active_chunks", 0)
        .value("completed_at", Utc::now())
        .and_where(Expr::col("id").eq(job));
    let state = update_job(ctx, update).await?;
    settle(ctx, &state, &before, Status::Cancelled).await?;
    Ok(job)
}

/// Runs `update` of one job (table and filter set) and reads the job's counters after it.
pub(super) async fn update_job(
    ctx: &WriteCtx<'_>,
    mut update: sea_orm::sea_query::UpdateStatement,
) -> ApiResult<JobRow> {
    update.returning(Query::returning().columns(JOB_COLUMNS));
    let row = ctx
        .db
        .query_one(&update)
        .await?
        .ok_or_else(|| ApiError::Internal("a crawl job vanished while locked".to_owned()))?;
    JobRow::read(&row)
}

/// The job columns [`JobRow`] reads, in its order.
pub(super) const JOB_COLUMNS: [&str; 8] = [
    "id",
    "project_id",
    "user_id",
    "total_chunks",
    "completed_chunks",
    "failed_chunks",
    "credits_reserved",
    "credits_used",
];

/// A job's counters after a change.
#[derive(Clone, Copy, Debug)]
pub(super) struct JobRow {
    pub id: Uuid,
    pub project: Uuid,
    pub user: Uuid,
    pub total: i32,
    pub completed: i32,
    pub failed: i32,
    pub reserved: i32,
    pub used: i32,
}

impl JobRow {
    /// Reads [`JOB_COLUMNS`].
    pub fn read(row: &QueryResult) -> ApiResult<Self> {
        Ok(Self {
            id: row.try_get_by_index(0)?,
            project: row.try_get_by_index(1)?,
            user: row.try_get_by_index(2)?,
            total: row.try_get_by_index(3)?,
            completed: row.try_get_by_index(4)?,
            failed: row.try_get_by_index(5)?,
            reserved: row.try_get_by_index(6)?,
            used: row.try_get_by_index(7)?,
        })
    }
}

/// Ends a job whose row already says `end` (finished or cancelled): releases the credits it
/// did not use, counts its usage, tells its user and subscribers, and logs the change.
pub(super) async fn settle(
    ctx: &WriteCtx<'_>,
    job: &JobRow,
    from: &str,
    end: Status,
) -> ApiResult<()> {
    let used = job.used;
    let unused = job.reserved - used;
    if unused > 0 {
        let amount = Amount::parse("credits", unused.into())?;
        credits::post(ctx, job.user, Entry::Release, amount, reference(job.id)?).await?;
    }
    if used > 0 {
        usage::increment(ctx, job.user, Metric::CreditsSpent, used.into()).await?;
    }
    ctx.outbox
        .record(Write::update("crawl_jobs", job.id, Some(job.user)).key(job.project));
    let (severity, title) = match end {
        Status::Completed => (Severity::Success, "Crawl job completed"),
        Status::Failed => (Severity::Error, "Crawl job failed"),
        _ => (Severity::Warning, "Crawl job cancelled"),
    };
    let notice = Notice {
        user: job.user,
        topic: Topic::CrawlJob,
        severity,
        title: title.to_owned(),
        body: format!(
            "{} of {} chunks done; {used} credits used, {unused} released.",
            job.completed, job.total
        ),
        data: json!({ "crawlJobId": crate::graphql::ids::encode("CrawlJob", job.id) }),
    };
    notifications::notify(ctx, notice).await?;
    let action = match end {
        Status::Completed => "crawl_job.completed",
        Status::Failed => "crawl_job.failed",
        _ => "crawl_job.cancelled",
    };
    log(ctx, job.user, job.id, action, Some(from), end).await
}

/// Writes the activity log row of a job's change of state.
pub(super) async fn log(
    ctx: &WriteCtx<'_>,
    user: Uuid,
    job: Uuid,
    action: &'static str,
    from: Option<&str>,
    to: Status,
) -> ApiResult<()> {
    activity::record(
        ctx,
        Change {
            user,
            entity_type: "crawl_job",
            entity: job,
            action,
            from: from.map_or(Value::Null, |s| json!({ "status": s })),
            to: json!({ "status": to.as_str() }),
            details: None,
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_have_a_documented_shape() {
        let ok = Config::parse(
            "c",
            Some(&json!({ "startUrls": ["https://example.com/a"], "chunkSize": 50 })),
        )
        .unwrap();
        assert_eq!(ok.chunk_size, 50);
        assert_eq!(
            Config::parse("c", None).unwrap().chunk_size,
            DEFAULT_CHUNK_SIZE
        );
        for bad in [
            json!({ "startUrls": ["ftp://example.com"] }),
            json!({ "startUrls": ["https://"] }),
            json!({ "sources": ["altavista"] }),
            json!({ "chunkSize": 0 }),
            json!({ "maxDepth": 3 }),
            json!([1, 2]),
        ] {
            assert!(Config::parse("c", Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_job_needs_images_and_something_to_crawl() {
        let keywords = json!(["cats"]);
        assert!(NewJob::parse(Uuid::nil(), "j", Some(&keywords), 10, None).is_ok());
        assert!(NewJob::parse(Uuid::nil(), "j", Some(&keywords), 0, None).is_err());
        assert!(NewJob::parse(Uuid::nil(), "j", Some(&keywords), MAX_IMAGES + 1, None).is_err());
        assert!(NewJob::parse(Uuid::nil(), "j", None, 10, None).is_err());
        let tiny = json!({ "chunkSize": 1 });
        assert!(NewJob::parse(Uuid::nil(), "j", Some(&keywords), 5_000, Some(&tiny)).is_err());
    }
}
