//! Retention of storefront `events` (seed 004), per shop: each shop keeps
//! [`retention_days`] of them. On PostgreSQL a monthly partition goes whole once no shop
//! keeps anything in it (it ended before the longest retention); otherwise rows are
//! deleted shop by shop, [`CHUNK`] at a time, so no statement holds a huge delete. A shop
//! uninstalled longer ago than its retention is purged: its events in chunks, then its row
//! (everything else it owns cascades).

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Func, Query, SelectStatement};
use sea_orm::{ConnectionTrait as _, DatabaseConnection, DbBackend};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domains::ServiceWork;
use crate::domains::shopify::shops::retention_days;
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;

/// The most rows one delete statement removes.
pub const CHUNK: u64 = 10_000;

/// What one retention pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Monthly partitions dropped (PostgreSQL).
    pub dropped: i32,
    /// Event rows deleted.
    pub deleted: u64,
    /// Uninstalled shops purged.
    pub purged: u64,
}

/// A shop and what it keeps.
struct Shop {
    id: Uuid,
    /// Events before this are past the shop's retention.
    cutoff: DateTime<Utc>,
    days: i64,
    /// Whether it was uninstalled longer ago than its retention.
    expired: bool,
}

/// Applies every shop's retention (`default_days` for a shop whose settings do not say);
/// returns what it did and the writes to publish (purged shops).
pub async fn apply(
    db: &DatabaseConnection,
    default_days: u32,
) -> ApiResult<(Retained, Vec<Write>)> {
    let now = Utc::now();
    let shops = shops(db, default_days, now).await?;
    let mut retained = Retained::default();
    if db.get_database_backend() == DbBackend::Postgres {
        // The oldest moment a shop still keeps; without shops there are no events (they
        // cascade from their shop) and the default decides.
        let longest = shops
            .iter()
            .filter(|s| !s.expired)
            .map(|s| s.days)
            .max()
            .unwrap_or(i64::from(default_days));
        retained.dropped = drop_partitions_before(db, now - Duration::days(longest)).await?;
    }
    let mut writes = Vec::new();
    for shop in &shops {
        if shop.expired {
            retained.deleted += delete_events(db, shop.id, None, Some(still_expired(shop))).await?;
            if purge(db, shop, &mut writes).await? {
                retained.purged += 1;
            }
        } else {
            retained.deleted += delete_events(db, shop.id, Some(shop.cutoff), None).await?;
        }
    }
    Ok((retained, writes))
}

/// Every shop with its retention.
async fn shops(
    db: &DatabaseConnection,
    default_days: u32,
    now: DateTime<Utc>,
) -> ApiResult<Vec<Shop>> {
    let mut select = Query::select();
    select
        .from("shops")
        .columns(["id", "settings", "uninstalled_at"]);
    let mut shops = Vec::new();
    for row in db.query_all(&select).await? {
        let settings: Json = row.try_get_by_index(1)?;
        let uninstalled_at: Option<DateTime<Utc>> = row.try_get_by_index(2)?;
        let days = retention_days(&settings, default_days);
        let cutoff = now - Duration::days(days);
        shops.push(Shop {
            id: row.try_get_by_index(0)?,
            cutoff,
            days,
            expired: uninstalled_at.is_some_and(|at| at <= cutoff),
        });
    }
    Ok(shops)
}

/// The shop's row while it is still uninstalled past its retention (a shop re-installed
/// meanwhile keeps its data).
fn still_expired(shop: &Shop) -> SelectStatement {
    let mut select = Query::select();
    select
        .from("shops")
        .expr(Expr::val(1))
        .and_where(Expr::col("id").eq(shop.id))
        .and_where(Expr::col("uninstalled_at").lte(shop.cutoff));
    select
}

/// Deletes `shop`'s events before `before` (all of them without it), [`CHUNK`] rows per
/// statement, while `guard` (if any) finds a row; returns how many.
async fn delete_events(
    db: &DatabaseConnection,
    shop: Uuid,
    before: Option<DateTime<Utc>>,
    guard: Option<SelectStatement>,
) -> ApiResult<u64> {
    let mut deleted = 0;
    loop {
        let mut some = Query::select();
        some.from("events")
            .column("id")
            .and_where(Expr::col("shop_id").eq(shop))
            .limit(CHUNK);
        let mut delete = Query::delete();
        delete
            .from_table("events")
            .and_where(Expr::col("shop_id").eq(shop));
        if let Some(before) = before {
            some.and_where(Expr::col("ts").lt(before));
            delete.and_where(Expr::col("ts").lt(before));
        }
        if let Some(guard) = &guard {
            delete.and_where(Expr::exists(guard.clone()));
        }
        delete.and_where(Expr::col("id").in_subquery(some));
        let rows = db.execute(&delete).await?.rows_affected();
        deleted += rows;
        if rows < CHUNK {
            return Ok(deleted);
        }
    }
}

/// Deletes an expired shop's row as `service_role` (what it owns cascades); whether it
/// was still expired.
async fn purge(db: &DatabaseConnection, shop: &Shop, writes: &mut Vec<Write>) -> ApiResult<bool> {
    let work = ServiceWork::begin(db).await?;
    let ctx = work.ctx();
    let mut delete = Query::delete();
    delete
        .from_table("shops")
        .and_where(Expr::col("id").eq(shop.id))
        .and_where(Expr::col("uninstalled_at").lte(shop.cutoff));
    let purged = match ctx.db.execute(&delete).await {
        Ok(done) => done.rows_affected() > 0,
        Err(error) => {
            work.finish(false).await?;
            return Err(error.into());
        }
    };
    if purged {
        tracing::info!(shop.id = %shop.id, "purged shop {}, uninstalled past its retention", shop.id);
        ctx.outbox
            .record(Write::delete("shops", shop.id, Some(shop.id)));
    }
    writes.extend(work.finish(true).await?);
    Ok(purged)
}

/// Drops the monthly partitions that ended at or before `before`; how many.
async fn drop_partitions_before(db: &DatabaseConnection, before: DateTime<Utc>) -> ApiResult<i32> {
    let mut select = Query::select();
    select.expr(Func::cust("stratix_drop_event_partitions_before").arg(before));
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::Internal("dropping partitions returned no row".to_owned()))?;
    Ok(row.try_get_by_index(0)?)
}
