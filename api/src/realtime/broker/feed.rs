//! One subscription's stream: the replay of retained events after its cursor, then its
//! mailbox.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use uuid::Uuid;

use super::mailbox::Mailbox;
use super::session::{Filter, Session, load_rows};
use super::{FeedError, Inner, REPLAY_PAGE, State};
use crate::realtime::change::{Change, Delivery, Op};
use crate::store::{Row, Scope};
use crate::tables::tables;

/// SQLite: the retained events after `after` that `session` wants, checked against the
/// ring's bounds.
pub(super) fn ring_replay(
    state: &State,
    session: &Session,
    filter: &Filter,
    after: i64,
) -> Result<VecDeque<Arc<Change>>, FeedError> {
    if after > state.published {
        return Err(FeedError::UnknownCursor(after));
    }
    let oldest = state
        .ring
        .front()
        .map_or(state.published + 1, |(_, c)| c.cursor);
    if after < oldest - 1 {
        return Err(FeedError::CursorExpired(after));
    }
    let scope = session.scope();
    Ok(state
        .ring
        .iter()
        .map(|(_, c)| c)
        .filter(|c| c.cursor > after && c.cursor <= state.routed)
        .filter(|c| filter.matches(c) && scope.allows(c.table(), c.owner))
        .cloned()
        .collect())
}

/// PostgreSQL: whether `after` can be resumed from (`routed` is the broker's last routed
/// cursor): not older than the oldest retained change, not newer than the newest.
pub(super) async fn check_retained(
    db: &DatabaseConnection,
    after: i64,
    routed: i64,
) -> Result<(), FeedError> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT min(cursor), max(cursor) FROM {}",
                migration::CHANGE_EVENTS
            ),
        ))
        .await?;
    let (oldest, newest) = match row {
        Some(row) => (
            row.try_get_by_index::<Option<i64>>(0)?,
            row.try_get_by_index::<Option<i64>>(1)?,
        ),
        None => (None, None),
    };
    if after > std::cmp::max(routed, newest.unwrap_or(routed)) {
        return Err(FeedError::UnknownCursor(after));
    }
    match oldest {
        Some(oldest) if after < oldest - 1 => Err(FeedError::CursorExpired(after)),
        None if after < routed => Err(FeedError::CursorExpired(after)),
        _ => Ok(()),
    }
}

/// Removes its subscription from the registry when the feed is dropped.
pub(super) struct Registration {
    pub(super) inner: Arc<Inner>,
    pub(super) id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.unregister(self.id);
    }
}

pub(super) enum Replay {
    /// SQLite: the events to replay, taken from the ring at subscription.
    Ring(VecDeque<Arc<Change>>),
    /// PostgreSQL: read `change_events` after `next` up to `until`.
    Table { next: i64, until: i64 },
}

/// One subscription's event stream.
pub(super) struct Feed {
    pub(super) inner: Arc<Inner>,
    pub(super) session: Arc<Session>,
    pub(super) filter: Filter,
    pub(super) _registration: Registration,
    pub(super) mailbox: Arc<Mailbox>,
    pub(super) replay: Option<Replay>,
    pub(super) buffer: VecDeque<Arc<Delivery>>,
    pub(super) skip_until: i64,
}

impl Feed {
    pub(super) async fn next(&mut self) -> Result<Arc<Delivery>, FeedError> {
        loop {
            if let Some(delivery) = self.buffer.pop_front() {
                return Ok(delivery);
            }
            if self.replay.is_some() {
                // Boxed: a feed waits on its mailbox for most of its life; the replay's
                // (larger) future should not make every waiting feed larger.
                Box::pin(self.replay_step()).await?;
                continue;
            }
            let delivery = self.mailbox.next().await?;
            if delivery.change.cursor > self.skip_until {
                return Ok(delivery);
            }
        }
    }

    /// Reads the next replay page into the buffer, or ends the replay.
    async fn replay_step(&mut self) -> Result<(), FeedError> {
        let changes: Vec<Arc<Change>> = match &mut self.replay {
            Some(Replay::Ring(ring)) => {
                let n = ring.len().min(REPLAY_PAGE as usize);
                ring.drain(..n).collect()
            }
            Some(Replay::Table { next, until }) => {
                let page =
                    read_retained(&self.inner.db, &self.session, &self.filter, *next, *until)
                        .await?;
                match page.last() {
                    Some((cursor, _)) => *next = *cursor,
                    None => *next = *until,
                }
                let scope = self.session.scope();
                page.into_iter()
                    .filter_map(|(_, change)| change)
                    .filter(|c| self.filter.matches(c) && scope.allows(c.table(), c.owner))
                    .map(Arc::new)
                    .collect()
            }
            None => Vec::new(),
        };
        let finished = match &self.replay {
            Some(Replay::Ring(ring)) => ring.is_empty() && changes.is_empty(),
            Some(Replay::Table { next, until }) => next >= until && changes.is_empty(),
            None => true,
        };
        if finished {
            self.replay = None;
            return Ok(());
        }
        let access = self.session.access();
        let mut ids: HashMap<usize, Vec<Uuid>> = HashMap::new();
        for change in changes.iter().filter(|c| c.op != Op::Delete) {
            ids.entry(change.table).or_default().push(change.id);
        }
        let mut rows: HashMap<(usize, Uuid), Arc<Row>> = HashMap::new();
        for (table, ids) in ids {
            let found = load_rows(&self.inner.db, &access, &tables().all[table], &ids).await?;
            rows.extend(found.into_iter().map(|(id, row)| ((table, id), row)));
        }
        self.buffer.extend(changes.into_iter().map(|change| {
            let node = if change.op == Op::Delete {
                None
            } else {
                rows.get(&(change.table, change.id)).cloned()
            };
            Arc::new(Delivery { change, node })
        }));
        Ok(())
    }
}

/// PostgreSQL: one page of `change_events` after `after` up to `until`, narrowed to the
/// tables and owners `session` could want (the filter and scope are applied again by the
/// caller). Returns every cursor read, with its change when the table is served.
async fn read_retained(
    db: &DatabaseConnection,
    session: &Session,
    filter: &Filter,
    after: i64,
    until: i64,
) -> Result<Vec<(i64, Option<Change>)>, FeedError> {
    let tables = filter.table_names();
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let owners: Option<Vec<Uuid>> = match session.scope() {
        Scope::Service => None,
        Scope::User {
            id, distributors, ..
        } => Some(std::iter::once(id).chain(distributors).collect()),
        Scope::Shop { id } => Some(vec![id]),
        Scope::Nobody => return Ok(Vec::new()),
    };
    let mut query = Query::select();
    query
        .expr(Expr::cust(RETAINED_COLUMNS))
        .from(Alias::new(migration::CHANGE_EVENTS))
        .and_where(Expr::col(Alias::new("cursor")).gt(after))
        .and_where(Expr::col(Alias::new("cursor")).lte(until))
        .and_where(Expr::col(Alias::new("table_name")).is_in(tables))
        .order_by(Alias::new("cursor"), Order::Asc)
        .limit(REPLAY_PAGE);
    if let Some(owners) = owners {
        query.cond_where(
            Condition::any()
                .add(Expr::col(Alias::new("owner")).is_in(owners))
                .add(Expr::col(Alias::new("owner")).is_null()),
        );
    }
    let rows = db.query_all(&query).await?;
    rows.iter().map(retained_change).collect()
}

/// The columns of `change_events` a change is read from, in the order [`retained_change`]
/// reads them.
pub(in crate::realtime) const RETAINED_COLUMNS: &str =
    "cursor, table_name, op, row_id, owner, feed_key";

/// One row of `change_events`, selected as [`RETAINED_COLUMNS`].
pub(in crate::realtime) fn retained_change(
    row: &sea_orm::QueryResult,
) -> Result<(i64, Option<Change>), FeedError> {
    let cursor: i64 = row.try_get_by_index(0)?;
    let table: String = row.try_get_by_index(1)?;
    let op: String = row.try_get_by_index(2)?;
    let change = match (tables().get(&table), Op::parse(&op)) {
        (Some(table), Some(op)) => Some(Change {
            cursor,
            table: table.index,
            op,
            id: row.try_get_by_index(3)?,
            owner: row.try_get_by_index(4)?,
            key: row.try_get_by_index(5)?,
        }),
        _ => None,
    };
    Ok((cursor, change))
}
