//! The workers' side of a crawl: claim a chunk of an open job under a lease, report what
//! it found once. Two workers never get the same chunk: on PostgreSQL the claim skips rows
//! another claim has locked (`FOR UPDATE SKIP LOCKED`), on SQLite a writing request holds
//! the database's write lock. A chunk whose lease ran out is handed to the next claimer.
//! The report that brings a job's last chunk in settles the job.

use std::collections::HashSet;

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use serde_json::Value;
use uuid::Uuid;

use super::jobs::{self, Status, is_web_url};
use crate::domains::accounts::usage::{self, Metric};
use crate::domains::{Lease, WriteCtx, may_work};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// A claim: of which job (any open one the worker may run when `None`), for how long.
#[derive(Clone, Copy, Debug)]
pub struct Claim {
    /// `crawl_jobs.id`, or any.
    pub job: Option<Uuid>,
    /// How long the worker holds the chunk.
    pub lease: Lease,
}

/// A claimed chunk and the lease that proves it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// `crawl_chunks.id`.
    pub chunk: Uuid,
    /// `crawl_jobs.id`.
    pub job: Uuid,
    /// What the worker shows to report the chunk.
    pub lease: Uuid,
}

/// One image a worker found.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    /// Where it is on the web.
    pub url: String,
    /// Where it was found (`google`, ...).
    pub source: String,
    /// Where the copy is stored.
    pub storage_url: Option<String>,
    /// SHA-256 of the file, lowercase hex: finds duplicates within the project.
    pub content_hash: Option<String>,
    /// Pixels.
    pub width: Option<i32>,
    /// Pixels.
    pub height: Option<i32>,
    /// `jpeg`, `png`, ...
    pub format: Option<String>,
    /// Bytes.
    pub file_size: Option<i64>,
}

impl Found {
    /// Checks image `index` of the report, given as JSON.
    pub fn parse(index: usize, value: &Value) -> ApiResult<Self> {
        let at = |key: &str| format!("input.images.{index}.{key}");
        let text = |key: &str, max: usize| -> ApiResult<Option<String>> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= max => {
                    Ok(Some(s.trim().to_owned()))
                }
                Some(_) => Err(ApiError::bad_input(
                    at(key),
                    format!("must be text of 1 to {max} characters"),
                )),
            }
        };
        let positive = |key: &str| -> ApiResult<Option<i64>> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_i64()
                    .filter(|n| *n > 0 && *n <= i64::from(i32::MAX))
                    .map(Some)
                    .ok_or_else(|| ApiError::bad_input(at(key), "must be a positive integer")),
            }
        };
        if !value.is_object() {
            return Err(ApiError::bad_input(
                format!("input.images.{index}"),
                "must be an object",
            ));
        }
        let url = text("url", 2048)?
            .filter(|u| is_web_url(u))
            .ok_or_else(|| ApiError::bad_input(at("url"), "must be an http(s) URL"))?;
        let content_hash = text("contentHash", 64)?;
        if let Some(hash) = &content_hash
            && (hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(ApiError::bad_input(
                at("contentHash"),
                "must be a SHA-256 in hex (64 characters)",
            ));
        }
        Ok(Self {
            url,
            source: text("source", 50)?.unwrap_or_else(|| "crawler".to_owned()),
            storage_url: text("storageUrl", 2048)?,
            content_hash: content_hash.map(|h| h.to_ascii_lowercase()),
            width: positive("width")?.map(|n| n as i32),
            height: positive("height")?.map(|n| n as i32),
            format: text("format", 10)?,
            file_size: positive("fileSize")?,
        })
    }
}

/// A worker's report of the chunk it holds.
#[derive(Clone, Debug)]
pub struct Report {
    /// `crawl_chunks.id`.
    pub chunk: Uuid,
    /// The lease the claim gave.
    pub lease: Uuid,
    /// The images found, at most the chunk's `max_images`.
    pub images: Vec<Found>,
    /// Images the worker could not download.
    pub failed: i32,
    /// Why the whole chunk failed, if it did.
    pub error: Option<String>,
}

/// Claims the next chunk the worker may crawl, or `None` when there is none.
pub async fn claim(ctx: &WriteCtx<'_>, input: Claim) -> ApiResult<Option<Claimed>> {
    may_work(ctx)?;
    let chunks = tables().named("crawl_chunks")?;
    let now = Utc::now();
    let mut open_jobs = Query::select();
    open_jobs
        .from("crawl_jobs")
        .column("id")
        .and_where(Expr::col("status").is_in(Status::OPEN));
    if let Some(job) = input.job {
        open_jobs.and_where(Expr::col("id").eq(job));
    }
    let mut next = Query::select();
    next.from(chunks.name)
        .columns(["id", "crawl_job_id", "status"])
        .and_where(Expr::col("crawl_job_id").in_subquery(open_jobs))
        .cond_where(
            Condition::any().add(Expr::col("status").eq("pending")).add(
                Condition::all()
                    .add(Expr::col("status").eq("active"))
                    .add(Expr::col("lease_expires_at").lt(now)),
            ),
        )
        .cond_where(ctx.scope.write_condition(chunks)?)
        .order_by("created_at", Order::Asc)
        .order_by("crawl_job_id", Order::Asc)
        .order_by("position", Order::Asc)
        .limit(1)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    let Some(found) = ctx.db.query_one(&next).await? else {
        return Ok(None);
    };
    let chunk: Uuid = found.try_get_by_index(0)?;
    let job: Uuid = found.try_get_by_index(1)?;
    let was: String = found.try_get_by_index(2)?;
    let lease = Uuid::new_v4();
    let mut hold = Query::update();
    hold.table(chunks.name)
        .value("status", "active")
        .value("lease_id", lease)
        .value("lease_expires_at", input.lease.until())
        .value("attempts", Expr::col("attempts").add(1))
        .and_where(Expr::col("id").eq(chunk));
    ctx.db.execute(&hold).await?;
    // The first claim starts the job.
    let mut start = Query::update();
    start
        .table("crawl_jobs")
        .value("status", Status::Running.as_str())
        .value("started_at", now)
        .and_where(Expr::col("id").eq(job))
        .and_where(Expr::col("status").eq(Status::Pending.as_str()));
    let started = ctx.db.execute(&start).await?.rows_affected() == 1;
    // A chunk taken over from an expired lease was already counted active.
    let mut count = Query::update();
    count
        .table("crawl_jobs")
        .value(
            "active_chunks",
            Expr::col("active_chunks").add(i32::from(was == "pending")),
        )
        .and_where(Expr::col("id").eq(job));
    let state = jobs::update_job(ctx, count).await?;
    ctx.outbox
        .record(Write::update("crawl_chunks", chunk, Some(state.user)).key(job));
    ctx.outbox
        .record(Write::update("crawl_jobs", job, Some(state.user)).key(state.project));
    if started {
        jobs::log(
            ctx,
            state.user,
            job,
            "crawl_job.started",
            Some("pending"),
            Status::Running,
        )
        .await?;
    }
    Ok(Some(Claimed { chunk, job, lease }))
}

/// Records the report of a chunk the worker holds: its images (duplicates of the
/// project's earlier images by content hash are kept but marked, and cost nothing), the
/// job's counters and progress, and, with the last chunk, the job's end.
pub async fn report(ctx: &WriteCtx<'_>, input: Report) -> ApiResult<Uuid> {
    may_work(ctx)?;
    let chunks = tables().named("crawl_chunks")?;
    let status = if input.error.is_some() {
        "failed"
    } else {
        "completed"
    };
    let mut end = Query::update();
    end.table(chunks.name)
        .value("status", status)
        .value("images_found", input.images.len() as i32)
        .value("images_failed", input.failed)
        .value("error_message", input.error.clone())
        .value("completed_at", Utc::now())
        .value("lease_id", sea_orm::Value::Uuid(None))
        .value("lease_expires_at", sea_orm::Value::ChronoDateTimeUtc(None))
        .and_where(Expr::col("id").eq(input.chunk))
        .and_where(Expr::col("status").eq("active"))
        .and_where(Expr::col("lease_id").eq(input.lease))
        .and_where(Expr::col("lease_expires_at").gt(Utc::now()))
        .cond_where(ctx.scope.write_condition(chunks)?)
        .returning(Query::returning().columns(["crawl_job_id", "user_id", "max_images"]));
    let Some(row) = ctx.db.query_one(&end).await? else {
        return Err(refusal(ctx, input.chunk).await?);
    };
    let job: Uuid = row.try_get_by_index(0)?;
    let user: Uuid = row.try_get_by_index(1)?;
    let max_images: i32 = row.try_get_by_index(2)?;
    if input.images.len() > max_images as usize {
        return Err(ApiError::bad_input(
            "input.images",
            format!("the chunk holds at most {max_images} images"),
        ));
    }
    // Reports of one project wait for each other here, so a duplicate in two reports at
    // once is seen by the second (the lock comes after the chunk's: see the module).
    let mut project = Query::select();
    project
        .from("projects")
        .column("id")
        .and_where(
            Expr::col("id").in_subquery(
                Query::select()
                    .from("crawl_jobs")
                    .column("project_id")
                    .and_where(Expr::col("id").eq(job))
                    .to_owned(),
            ),
        )
        .lock(LockType::Update);
    ctx.db.query_one(&project).await?;
    let new = record_images(ctx, job, user, &input.images).await?;
    let done = i32::from(status == "completed");
    let found = input.images.len() as i32;
    let total = Expr::col("total_chunks");
    let finished = Expr::col("completed_chunks")
        .add(Expr::col("failed_chunks"))
        .add(1);
    let mut count = Query::update();
    count
        .table("crawl_jobs")
        .value("active_chunks", Expr::col("active_chunks").sub(1))
        .value("completed_chunks", Expr::col("completed_chunks").add(done))
        .value("failed_chunks", Expr::col("failed_chunks").add(1 - done))
        .value(
            "total_images",
            Expr::col("total_images").add(found + input.failed),
        )
        .value(
            "downloaded_images",
            Expr::col("downloaded_images").add(found),
        )
        .value("valid_images", Expr::col("valid_images").add(new))
        .value("credits_used", Expr::col("credits_used").add(new))
        .value("progress", finished.clone().mul(100).div(total.clone()))
        .and_where(Expr::col("id").eq(job));
    let state = jobs::update_job(ctx, count).await?;
    ctx.outbox
        .record(Write::update("crawl_chunks", input.chunk, Some(user)).key(job));
    if new > 0 {
        usage::increment(ctx, user, Metric::ImagesCrawled, new.into()).await?;
    }
    if state.completed + state.failed == state.total {
        let end = if state.completed > 0 {
            Status::Completed
        } else {
            Status::Failed
        };
        let mut close = Query::update();
        close
            .table("crawl_jobs")
            .value("status", end.as_str())
            .value("completed_at", Utc::now())
            .value(
                "error_message",
                (end == Status::Failed).then(|| "every chunk failed".to_owned()),
            )
            .and_where(Expr::col("id").eq(job));
        ctx.db.execute(&close).await?;
        jobs::settle(ctx, &state, Status::Running.as_str(), end).await?;
    } else {
        ctx.outbox
            .record(Write::update("crawl_jobs", job, Some(user)).key(state.project));
    }
    Ok(input.chunk)
}

/// Why a report of `chunk` was refused: not the caller's (`NOT_FOUND`), already reported
/// or cancelled (`INVALID_TRANSITION`), or held by someone else or expired (`LEASE_LOST`).
async fn refusal(ctx: &WriteCtx<'_>, chunk: Uuid) -> ApiResult<ApiError> {
    let chunks = tables().named("crawl_chunks")?;
    let mut select = Query::select();
    select
        .from(chunks.name)
        .column("status")
        .and_where(Expr::col("id").eq(chunk))
        .cond_where(ctx.scope.write_condition(chunks)?);
    Ok(match ctx.db.query_one(&select).await? {
        None => ApiError::NotFound("crawl chunk".to_owned()),
        Some(row) => match row.try_get_by_index::<String>(0)?.as_str() {
            "active" => ApiError::refused(
                "input.leaseId",
                InputCode::LeaseLost,
                "the lease expired or another worker holds the chunk",
            ),
            status => ApiError::refused(
                "input.chunkId",
                InputCode::InvalidTransition,
                format!("the chunk is {status}: it takes one report while active"),
            ),
        },
    })
}

/// Writes the images of a report; returns how many are new to the project (not
/// duplicates by content hash), which is what the job is charged.
async fn record_images(
    ctx: &WriteCtx<'_>,
    job: Uuid,
    user: Uuid,
    images: &[Found],
) -> ApiResult<i32> {
    if images.is_empty() {
        return Ok(0);
    }
    let hashes: Vec<String> = images
        .iter()
        .filter_map(|i| i.content_hash.clone())
        .collect();
    let mut seen: HashSet<String> = HashSet::new();
    if !hashes.is_empty() {
        let mut project_jobs = Query::select();
        project_jobs.from("crawl_jobs").column("id").and_where(
            Expr::col("project_id").in_subquery(
                Query::select()
                    .from("crawl_jobs")
                    .column("project_id")
                    .and_where(Expr::col("id").eq(job))
                    .to_owned(),
            ),
        );
        let mut known = Query::select();
        known
            .from("images")
            .column("content_hash")
            .and_where(Expr::col("crawl_job_id").in_subquery(project_jobs))
            .and_where(Expr::col("content_hash").is_in(hashes));
        for row in ctx.db.query_all(&known).await? {
            seen.insert(row.try_get_by_index(0)?);
        }
    }
    let mut new = 0;
    let mut insert = Query::insert();
    insert.into_table("images").columns([
        "id",
        "crawl_job_id",
        "url",
        "source",
        "storage_url",
        "content_hash",
        "width",
        "height",
        "format",
        "file_size",
        "is_duplicate",
        "downloaded_at",
        "user_id",
    ]);
    let now = Utc::now();
    for image in images {
        let duplicate = match &image.content_hash {
            Some(hash) => !seen.insert(hash.clone()),
            None => false,
        };
        new += i32::from(!duplicate);
        insert
            .values([
                Expr::val(Uuid::new_v4()),
                Expr::val(job),
                Expr::val(image.url.clone()),
                Expr::val(image.source.clone()),
                Expr::val(image.storage_url.clone()),
                Expr::val(image.content_hash.clone()),
                Expr::val(image.width),
                Expr::val(image.height),
                Expr::val(image.format.clone()),
                Expr::val(image.file_size),
                Expr::val(duplicate),
                Expr::val(now),
                Expr::val(user),
            ])
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    ctx.db.execute(&insert).await?;
    Ok(new)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn images_are_checked_field_by_field() {
        let hash = "a".repeat(64);
        let ok = Found::parse(
            0,
            &json!({ "url": "https://img.test/1.png", "contentHash": hash }),
        );
        assert_eq!(ok.unwrap().source, "crawler");
        for (bad, field) in [
            (json!({ "url": "file:///etc/passwd" }), "input.images.3.url"),
            (
                json!({ "url": "https://a.test/x", "contentHash": "abc" }),
                "input.images.3.contentHash",
            ),
            (
                json!({ "url": "https://a.test/x", "width": 0 }),
                "input.images.3.width",
            ),
            (json!("https://a.test/x"), "input.images.3"),
        ] {
            match Found::parse(3, &bad) {
                Err(ApiError::BadUserInput { field: f, .. }) => assert_eq!(f, field, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }
}
