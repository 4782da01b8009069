//! `stratix keys rotate`: every encrypted column re-encrypted under the current key.
//!
//! Each table is walked in batches in `id` order, one transaction a batch (as
//! `service_role`); a value already under the current key is left alone, so a rotation
//! that stopped half-way is finished by running it again. A value that does not open (an
//! unknown key, an altered ciphertext) stops the rotation with its table, column and row.
//! Each update matches the old ciphertext, so a secret changed meanwhile is not
//! overwritten (it was encrypted under the current key anyway).

use sea_orm::sea_query::{Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use uuid::Uuid;

use super::{Column, KeyRing};
use crate::domains::ServiceWork;

/// Rows read and re-encrypted per transaction.
pub const BATCH: u64 = 500;

/// Every encrypted column of the schema: the catalog's secret columns named `*_enc`.
pub fn encrypted_columns() -> Vec<Column> {
    migration::catalog::TABLES
        .iter()
        .flat_map(|spec| {
            spec.encrypted().map(|name| Column {
                table: spec.name,
                name,
            })
        })
        .collect()
}

/// How far a rotation got in one column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// The column.
    pub column: Option<Column>,
    /// Values read so far.
    pub seen: u64,
    /// Of them, re-encrypted under the current key.
    pub rotated: u64,
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(column) = self.column {
            write!(f, "{}.{}: ", column.table, column.name)?;
        }
        write!(f, "{} values, {} re-encrypted", self.seen, self.rotated)
    }
}

/// Re-encrypts every encrypted column under `ring`'s current key, calling `progress` after
/// each batch; the totals per column.
pub async fn rotate(
    pool: &DatabaseConnection,
    ring: &KeyRing,
    mut progress: impl FnMut(&Progress),
) -> anyhow::Result<Vec<Progress>> {
    let mut totals = Vec::new();
    for column in encrypted_columns() {
        let mut done = Progress {
            column: Some(column),
            ..Progress::default()
        };
        let mut after: Option<Uuid> = None;
        loop {
            let (last, seen, rotated) = batch(pool, ring, column, after).await?;
            done.seen += seen;
            done.rotated += rotated;
            progress(&done);
            match last {
                Some(last) if seen == BATCH => after = Some(last),
                _ => break,
            }
        }
        totals.push(done);
    }
    Ok(totals)
}

/// One batch of `column` after row `after`: the last row's id, how many were read and how
/// many re-encrypted.
async fn batch(
    pool: &DatabaseConnection,
    ring: &KeyRing,
    column: Column,
    after: Option<Uuid>,
) -> anyhow::Result<(Option<Uuid>, u64, u64)> {
    let work = ServiceWork::begin(pool).await?;
    let outcome = rotate_rows(&work, ring, column, after).await;
    work.finish(outcome.is_ok()).await?;
    outcome
}

async fn rotate_rows(
    work: &ServiceWork,
    ring: &KeyRing,
    column: Column,
    after: Option<Uuid>,
) -> anyhow::Result<(Option<Uuid>, u64, u64)> {
    let ctx = work.ctx();
    let mut select = Query::select();
    select
        .from(column.table)
        .columns(["id", column.name])
        .and_where(Expr::col(column.name).is_not_null())
        .order_by("id", Order::Asc)
        .limit(BATCH);
    if let Some(after) = after {
        select.and_where(Expr::col("id").gt(after));
    }
    let rows = ctx.db.query_all(&select).await?;
    let (mut last, mut rotated) = (None, 0);
    for row in &rows {
        let id: Uuid = row.try_get_by_index(0)?;
        let sealed: Vec<u8> = row.try_get_by_index(1)?;
        last = Some(id);
        if ring.is_current(&sealed) {
            continue;
        }
        let plain = ring.decrypt(column, &sealed).map_err(|error| {
            anyhow::anyhow!("{}.{} of row {id}: {error}", column.table, column.name)
        })?;
        let mut update = Query::update();
        update
            .table(column.table)
            .value(column.name, ring.encrypt(column, &plain)?)
            .and_where(Expr::col("id").eq(id))
            .and_where(Expr::col(column.name).eq(sealed));
        rotated += ctx.db.execute(&update).await?.rows_affected();
    }
    Ok((last, rows.len() as u64, rotated))
}
