//! The crawling domain: PixCrawler's image crawls (seed 001).
//!
//! Owns `projects` (a user's folders of work), `crawl_jobs` (one crawl of a project, split
//! into `crawl_chunks` that workers claim and report) and `images` (what a crawl found). Every row is owned by a
//! user, and a child's owner always equals its parent's: the database refuses a crawl job
//! in another user's project, or an image in another user's crawl job.

pub mod crawl_chunks;
pub mod crawl_jobs;
pub mod images;
pub mod projects;
