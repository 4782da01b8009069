//! `events.seq`: the order events arrived in, so that readers of `events` (the experiment
//! results' counting) can go on from where they stopped instead of scanning again.
//!
//! A reader may only move past numbers whose transactions have all ended, or an event
//! committed late under a lower number would be skipped for good. PostgreSQL numbers
//! events from a sequence while batches commit in any order, so each batch holds a shared
//! advisory lock (the gate) until it commits, and [`settled`] takes the gate exclusively
//! for a moment: every batch holding a number then has ended, and later ones get higher
//! numbers. SQLite's writers take turns, so a batch numbers its events after the highest
//! stored ([`number`]) and what is stored is always settled.

use sea_orm::sea_query::{Expr, ExprTrait as _, Func, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait as _};

use crate::error::ApiResult;

/// The gate's advisory lock key, as `hashtext` takes it.
const GATE: &str = "stratix_events_seq";

/// Called by a writing transaction before it inserts events: on PostgreSQL it takes the
/// gate (shared) and the database numbers the rows (`None`); on SQLite it returns the
/// number of the batch's first event, the next ones following it.
pub async fn number<C: ConnectionTrait>(db: &C) -> ApiResult<Option<i64>> {
    if db.get_database_backend() == DbBackend::Postgres {
        gate(db, "pg_advisory_xact_lock_shared").await?;
        return Ok(None);
    }
    Ok(Some(highest(db).await? + 1))
}

/// The highest `seq` at or below which every event is committed.
pub async fn settled(db: &DatabaseConnection) -> ApiResult<i64> {
    if db.get_database_backend() != DbBackend::Postgres {
        return highest(db).await;
    }
    let txn = db.begin().await?;
    gate(&txn, "pg_advisory_xact_lock").await?;
    let highest = highest(&txn).await?;
    txn.commit().await?;
    Ok(highest)
}

async fn gate<C: ConnectionTrait>(db: &C, lock: &'static str) -> ApiResult<()> {
    let mut select = Query::select();
    select.expr(Func::cust(lock).arg(Func::cust("hashtext").arg(GATE)));
    db.query_one(&select).await?;
    Ok(())
}

async fn highest<C: ConnectionTrait>(db: &C) -> ApiResult<i64> {
    let mut select = Query::select();
    select
        .from("events")
        .expr(Func::coalesce([Expr::col("seq").max(), Expr::val(0i64)]));
    Ok(match db.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    })
}
