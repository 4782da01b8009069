//! `events` upkeep (seed 004): this month's and next month's partitions on PostgreSQL, and
//! retention on both backends. `stratix partitions` runs it once; `stratix serve` daily.

use chrono::{Datelike as _, Months, TimeZone as _, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, Query};
use sea_orm::{ConnectionTrait, DbBackend, DbErr};

/// How many months of `events` are kept by default: seed 004's 90 days, in whole months.
pub const DEFAULT_RETENTION_MONTHS: u32 = 3;

/// What one upkeep did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Upkeep {
    /// Monthly partitions made (PostgreSQL).
    pub made: i32,
    /// Monthly partitions dropped by retention (PostgreSQL).
    pub dropped: i32,
    /// Rows deleted by retention (SQLite, where `events` is one table; PostgreSQL's
    /// `events_default`).
    pub deleted: u64,
}

impl std::fmt::Display for Upkeep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} partitions made, {} dropped, {} rows deleted",
            self.made, self.dropped, self.deleted
        )
    }
}

/// Makes this month's and next month's `events` partitions where missing, then drops
/// what is older than `retention_months` whole months (`0`: keep everything). Two
/// instances at once take turns (the functions take an advisory lock).
pub async fn upkeep<C: ConnectionTrait>(db: &C, retention_months: u32) -> Result<Upkeep, DbErr> {
    let mut upkeep = Upkeep::default();
    if db.get_database_backend() == DbBackend::Postgres {
        upkeep.made = call(db, "stratix_ensure_event_partitions", 1).await?;
        if retention_months > 0 {
            let keep = i32::try_from(retention_months).unwrap_or(i32::MAX);
            upkeep.dropped = call(db, "stratix_drop_event_partitions", keep).await?;
        }
    }
    // What no partition drop removes: SQLite's rows (one table), and on PostgreSQL old rows
    // in `events_default` (partition pruning skips the monthly partitions).
    let cutoff = Utc::now()
        .checked_sub_months(Months::new(retention_months))
        .and_then(|t| {
            Utc.with_ymd_and_hms(t.year(), t.month(), 1, 0, 0, 0)
                .single()
        });
    if let (true, Some(cutoff)) = (retention_months > 0, cutoff) {
        let mut delete = Query::delete();
        delete
            .from_table("events")
            .and_where(Expr::col("ts").lt(cutoff));
        upkeep.deleted = db.execute(&delete).await?.rows_affected();
    }
    Ok(upkeep)
}

/// `SELECT function(argument)`, an integer.
async fn call<C: ConnectionTrait>(db: &C, function: &str, argument: i32) -> Result<i32, DbErr> {
    let mut select = Query::select();
    select.expr(Func::cust(function.to_owned()).arg(argument));
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("{function} returned no row")))?;
    row.try_get_by_index(0)
}
