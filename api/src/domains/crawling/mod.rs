//! Crawling (seed 001): a user's projects (generated writes), the crawl jobs made in them
//! and the chunks a job is split into. [`jobs`] makes a job (reserving a credit per image
//! it may collect), cancels it, and settles it when its last chunk is in (releasing the
//! credits it did not use); [`chunks`] is the workers' side: claim a chunk under a lease,
//! report what it found. Every state change writes its activity log row and reaches
//! `crawlJobUpdated` subscribers after the commit.
//!
//! Jobs: `pending` -> `running` -> `completed` | `failed` | `cancelled`, and `pending` ->
//! `cancelled`. Chunks: `pending` -> `active` -> `completed` | `failed`, and `pending` |
//! `active` -> `cancelled`. Locks are always taken chunk first, then job (a report also
//! locks the project, after its chunk, to find duplicates), so a claim, a report and a
//! cancel running together never deadlock.

pub mod chunks;
pub mod jobs;
