//! Operations: schema and data checks (`stratix check`), backup and restore, `events`
//! partitions and retention, expired rows, the background jobs of `stratix serve`, and `/ready` and
//! `/metrics`.

pub mod backup;
pub mod check;
pub mod endpoints;
pub mod expiry;
pub mod jobs;
pub mod partitions;
pub mod retention;
