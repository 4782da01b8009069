//! The crawling domain's workflows: crawl jobs, and the workers' chunks.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};
use uuid::Uuid;

use super::{Declaration, Returned, declare, int, text};
use crate::domains::crawling::chunks::{self, Claim, Claimed, Found, Report};
use crate::domains::crawling::jobs::{self, NewJob};
use crate::error::{ApiError, ApiResult};
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "crawlJobCreate",
            "Makes a crawl job in one of the signed-in user's projects: reserves a credit per \
             image it may collect (`INSUFFICIENT_CREDITS` when short) and splits it into chunks \
             for workers. Credits the job does not use are released when it ends.",
            Right::Write,
            vec![
                InputValue::new("projectId", TypeRef::named_nn(TypeRef::ID))
                    .description("The project's global id."),
                InputValue::new("name", TypeRef::named_nn(TypeRef::STRING))
                    .description("1 to 100 characters."),
                InputValue::new("keywords", TypeRef::named_nn_list(TypeRef::STRING))
                    .description("What to search for, at most 50."),
                int("maxImages", "Images to collect at most, 1 to 100,000."),
                InputValue::new("config", TypeRef::named("JSON")).description(
                    "Options: `startUrls` (http(s) URLs), `sources` (google, bing, duckduckgo, \
                     flickr, unsplash), `formats` (jpeg, png, webp, gif), `minWidth`, \
                     `minHeight`, `chunkSize` (images per chunk, 100 by default).",
                ),
            ],
            |input| {
                let keywords = input.json("keywords")?;
                let config = input.json("config")?;
                NewJob::parse(
                    input.id("projectId", "Project")?,
                    &input.string("name")?.unwrap_or_default(),
                    keywords.as_ref(),
                    input.int("maxImages")?,
                    config.as_ref(),
                )
            },
            |ctx, job| Box::pin(jobs::create(ctx, job)),
            job_row(),
        ),
        declare(
            "crawlJobCancel",
            "Cancels a pending or running crawl job: no chunk is handed out or accepted any \
             more, and the credits it did not use are released.",
            Right::Write,
            vec![
                InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                    .description("The job's global id."),
            ],
            |input| input.id("id", "CrawlJob"),
            |ctx, job| Box::pin(jobs::cancel(ctx, job)),
            job_row(),
        ),
        declare(
            "crawlJobClaimChunk",
            "Claims the next chunk of an open crawl job the worker may run and holds it for \
             `leaseSeconds`; `crawlChunk` is null when there is none. Two workers never hold \
             one chunk.",
            Right::Work,
            vec![
                InputValue::new("jobId", TypeRef::named(TypeRef::ID))
                    .description("Only this job's chunks; any job's when left out."),
                InputValue::new("leaseSeconds", TypeRef::named(TypeRef::INT)).description(
                    "How long the worker holds the chunk: 1 to 3600 seconds, 60 by default.",
                ),
            ],
            |input| {
                let job = match input.get("jobId") {
                    None => None,
                    Some(_) => Some(input.id("jobId", "CrawlJob")?),
                };
                Ok(Claim {
                    job,
                    lease: input.lease()?,
                })
            },
            |ctx, claim| Box::pin(chunks::claim(ctx, claim)),
            vec![
                Returned::Row("crawlChunk", "crawl_chunks", |c: &Option<Claimed>| {
                    c.map(|c| c.chunk)
                }),
                Returned::Row("crawlJob", "crawl_jobs", |c| c.map(|c| c.job)),
                Returned::Value(
                    "leaseId",
                    TypeRef::STRING,
                    "What the worker shows to report the chunk (shown only here).",
                    |c| c.map(|c| GqlValue::from(c.lease.to_string())),
                ),
            ],
        ),
        declare(
            "crawlJobReportChunk",
            "Reports the chunk the worker holds, once: its images (a duplicate of an image \
             already in the project, by content hash, is kept, marked and not charged), how \
             many failed, or `error` when the whole chunk failed. The last chunk ends the job.",
            Right::Work,
            vec![
                InputValue::new("chunkId", TypeRef::named_nn(TypeRef::ID))
                    .description("The chunk's global id."),
                InputValue::new("leaseId", TypeRef::named_nn(TypeRef::STRING))
                    .description("The lease `crawlJobClaimChunk` gave."),
                InputValue::new("images", TypeRef::named_nn_list_nn("JSON")).description(
                    "The images found: `url` (required), `source`, `storageUrl`, \
                         `contentHash` (SHA-256, hex), `width`, `height`, `format`, `fileSize`.",
                ),
                int("failed", "Images that could not be downloaded."),
                text("error", "Why the whole chunk failed, if it did."),
            ],
            |input| {
                let images = match input.json("images")? {
                    None => Vec::new(),
                    Some(serde_json::Value::Array(list)) => list
                        .iter()
                        .enumerate()
                        .map(|(i, image)| Found::parse(i, image))
                        .collect::<ApiResult<_>>()?,
                    Some(_) => return Err(ApiError::bad_input("input.images", "must be a list")),
                };
                let failed = input.int("failed")?;
                let failed = i32::try_from(failed)
                    .ok()
                    .filter(|f| (0..=100_000).contains(f))
                    .ok_or_else(|| ApiError::bad_input("input.failed", "must be 0 to 100,000"))?;
                Ok(Report {
                    chunk: input.id("chunkId", "CrawlChunk")?,
                    lease: input.lease_id()?,
                    images,
                    failed,
                    error: input.string("error")?,
                })
            },
            |ctx, report| Box::pin(chunks::report(ctx, report)),
            vec![Returned::Row("crawlChunk", "crawl_chunks", |c: &Uuid| {
                Some(*c)
            })],
        ),
    ]
}

fn job_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row("crawlJob", "crawl_jobs", |job| Some(*job))]
}
