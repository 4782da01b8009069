//! `events` upkeep (seed 004): this month's and next month's partitions on PostgreSQL, and
//! each shop's retention on both backends ([`super::retention`]). `stratix partitions`
//! runs it once; `stratix serve` daily.

use sea_orm::sea_query::{Func, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend};

use super::retention::{self, Retained};
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;

/// What one upkeep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Monthly partitions made (PostgreSQL).
    pub made: i32,
    /// What the retention removed.
    pub retained: Retained,
}

impl std::fmt::Display for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} partitions made, {} dropped, {} rows deleted, {} uninstalled shops purged",
            self.made, self.retained.dropped, self.retained.deleted, self.retained.purged
        )
    }
}

/// Makes this month's and next month's `events` partitions where missing, then applies
/// each shop's retention (`default_days` where its settings do not say); returns what it
/// did and the writes to publish. Two instances at once take turns (the partition
/// functions take an advisory lock).
pub async fn upkeep(db: &DatabaseConnection, default_days: u32) -> ApiResult<(Upkeep, Vec<Write>)> {
    let mut upkeep = Upkeep::default();
    if db.get_database_backend() == DbBackend::Postgres {
        let mut select = Query::select();
        select.expr(Func::cust("stratix_ensure_event_partitions").arg(1));
        let row = db.query_one(&select).await?.ok_or_else(|| {
            ApiError::Internal("stratix_ensure_event_partitions returned no row".to_owned())
        })?;
        upkeep.made = row.try_get_by_index(0)?;
    }
    let (retained, writes) = retention::apply(db, default_days).await?;
    upkeep.retained = retained;
    Ok((upkeep, writes))
}
