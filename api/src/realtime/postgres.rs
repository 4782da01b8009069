//! The PostgreSQL side of the feed: one `LISTEN` connection per instance, and a sequencer
//! that turns notifications into events in cursor order with nothing lost.
//!
//! Cursors come from a sequence when a row is written, but notifications arrive in commit
//! order, and a transaction that took a lower cursor may commit after one that took a
//! higher cursor (or roll back, leaving a hole for good). The sequencer therefore holds
//! events back while a lower cursor is missing, and settles the hole by asking PostgreSQL:
//! it takes a snapshot after the hole is seen, waits until every transaction that snapshot
//! shows in progress has ended, then reads the hole's range from `change_events`; what is
//! not there rolled back. The common case (the missing notification arrives a moment
//! later) costs nothing. A transaction that stays open longer than [`HOLD_LIMIT`] is not
//! waited for: later events go out, and its events are delivered when they arrive (out of
//! cursor order, so a client resuming across that moment could miss them).
//!
//! So cursors are delivered in increasing order, every instance agrees on the order, and
//! a subscriber's resume (`after`) reads exactly what it missed from `change_events`.
//! When the `LISTEN` connection drops, the listener reconnects and the sequencer reads what
//! it missed from `change_events`; if that is gone too, subscribers are told they missed
//! events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::broker::{Dispatch, FeedError, Inner, RETAINED_COLUMNS, retained_change};
use super::change::Change;

/// How long the sequencer waits for a missing cursor before delivering past it.
const HOLD_LIMIT: Duration = Duration::from_secs(10);

/// How long a hole may stay open before PostgreSQL is asked about it, and how often.
const SETTLE_POLL: Duration = Duration::from_millis(5);

/// How many rows one catch-up read takes.
const CATCH_UP_PAGE: i64 = 5000;

/// The most cursors remembered as skipped (see [`HOLD_LIMIT`]).
const LATE_MEMORY: usize = 10_000;

enum Notice {
    /// The listener is (again) listening: read what may have been missed.
    Connected,
    /// A notification's payload.
    Payload(String),
}

/// Starts the listener and the sequencer.
pub(super) fn spawn(inner: Arc<Inner>) {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(listen(inner.clone(), tx));
    tokio::spawn(sequence(inner, rx));
}

/// Holds one `LISTEN` connection from the pool, reconnecting with backoff.
async fn listen(inner: Arc<Inner>, tx: mpsc::UnboundedSender<Notice>) {
    let pool = inner.db.get_postgres_connection_pool().clone();
    let up = |listening: bool| inner.listening.store(listening, Ordering::Release);
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(migration::CHANGE_CHANNEL).await?;
            Ok::<_, sea_orm::sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(sea_orm::sqlx::Error::PoolClosed) => return,
            Err(error) => {
                tracing::warn!(%error, "realtime: cannot LISTEN; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        up(true);
        if tx.send(Notice::Connected).is_err() {
            return;
        }
        loop {
            match listener.try_recv().await {
                Ok(Some(notification)) => {
                    if tx
                        .send(Notice::Payload(notification.payload().to_owned()))
                        .is_err()
                    {
                        return;
                    }
                }
                // The connection dropped and was re-established (and is listening again).
                Ok(None) => {
                    tracing::warn!("realtime: the LISTEN connection dropped; reconnected");
                    if tx.send(Notice::Connected).is_err() {
                        return;
                    }
                }
                Err(sea_orm::sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    tracing::warn!(%error, "realtime: the LISTEN connection failed; reconnecting");
                    up(false);
                    break;
                }
            }
        }
        tokio::time::sleep(backoff).await;
    }
}

/// A hole in the cursors: first seen at `since`; `snapshot` (taken after it was seen)
/// decides it for every cursor up to `top`.
struct Hole {
    /// The first missing cursor.
    missing: i64,
    since: Instant,
    check_at: Instant,
    snapshot: Option<(String, i64)>,
}

struct Sequencer {
    inner: Arc<Inner>,
    /// Every cursor up to here is delivered or known to have rolled back.
    settled: Option<i64>,
    /// Cursors above `settled`, waiting for the ones below them.
    pending: BTreeMap<i64, Option<Change>>,
    hole: Option<Hole>,
    /// Cursors delivered past after [`HOLD_LIMIT`]; delivered late if they turn up.
    late: BTreeSet<i64>,
}

async fn sequence(inner: Arc<Inner>, mut notices: mpsc::UnboundedReceiver<Notice>) {
    let mut sequencer = Sequencer {
        inner,
        settled: None,
        pending: BTreeMap::new(),
        hole: None,
        late: BTreeSet::new(),
    };
    loop {
        let check_at = sequencer.hole.as_ref().map(|h| h.check_at);
        tokio::select! {
            notice = notices.recv() => match notice {
                None => return,
                Some(Notice::Connected) => {
                    if let Err(error) = sequencer.connected().await {
                        tracing::error!(?error, "realtime: catching up failed; subscribers will resume");
                        sequencer.settled = None;
                        if let Err(error) = sequencer.connected().await {
                            tracing::error!(?error, "realtime: restarting the feed failed");
                        }
                    }
                }
                Some(Notice::Payload(payload)) => sequencer.notice(&payload),
            },
            () = sleep_until(check_at) => {
                if let Err(error) = sequencer.check_hole().await {
                    tracing::warn!(?error, "realtime: settling a cursor hole failed; retrying");
                    if let Some(hole) = &mut sequencer.hole {
                        hole.check_at = Instant::now() + Duration::from_millis(500);
                    }
                }
            }
        }
        sequencer.flush();
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Sequencer {
    async fn query(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<Vec<sea_orm::QueryResult>, FeedError> {
        Ok(self
            .inner
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                values,
            ))
            .await?)
    }

    /// Whether every transaction `snapshot` shows in progress has ended.
    async fn settled(&self, snapshot: &str) -> Result<bool, FeedError> {
        let rows = self
            .query(
                "SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip($1::pg_snapshot) x \
                 WHERE pg_xact_status(x) = 'in progress')",
                vec![snapshot.into()],
            )
            .await?;
        Ok(rows
            .first()
            .map(|r| r.try_get_by_index::<bool>(0))
            .transpose()?
            .unwrap_or(true))
    }

    /// The listener is listening: start the feed, or read what the gap in listening missed.
    async fn connected(&mut self) -> Result<(), FeedError> {
        let Some(settled) = self.settled else {
            return self.start().await;
        };
        let retained = self
            .query(
                &format!("SELECT min(cursor) FROM {}", migration::CHANGE_EVENTS),
                vec![],
            )
            .await?;
        let oldest: Option<i64> = match retained.first() {
            Some(row) => row.try_get_by_index(0)?,
            None => None,
        };
        if oldest.is_some_and(|oldest| oldest > settled + 1) {
            // What was missed may have been pruned: start afresh; subscribers resume.
            tracing::warn!("realtime: missed changes are no longer retained");
            self.settled = None;
            return self.start().await;
        }
        let mut after = settled;
        loop {
            let rows = self
                .query(
                    &format!(
                        "SELECT {RETAINED_COLUMNS} FROM {} \
                         WHERE cursor > $1 ORDER BY cursor LIMIT {CATCH_UP_PAGE}",
                        migration::CHANGE_EVENTS
                    ),
                    vec![after.into()],
                )
                .await?;
            for row in &rows {
                let (cursor, change) = retained_change(row)?;
                self.pending.entry(cursor).or_insert(change);
                after = cursor;
            }
            if (rows.len() as i64) < CATCH_UP_PAGE {
                return Ok(());
            }
        }
    }

    /// Starts (or restarts) the feed at the newest settled cursor.
    async fn start(&mut self) -> Result<(), FeedError> {
        let rows = self
            .query(
                &format!(
                    "SELECT coalesce(max(cursor), 0), pg_current_snapshot()::text FROM {}",
                    migration::CHANGE_EVENTS
                ),
                vec![],
            )
            .await?;
        let (newest, snapshot): (i64, String) = match rows.first() {
            Some(row) => (row.try_get_by_index(0)?, row.try_get_by_index(1)?),
            None => (0, String::new()),
        };
        // Cursors below `newest` may belong to transactions still running; once they end,
        // the retention has them and resuming subscribers read them from there.
        let deadline = Instant::now() + HOLD_LIMIT;
        while !snapshot.is_empty() && Instant::now() < deadline && !self.settled(&snapshot).await? {
            tokio::time::sleep(SETTLE_POLL).await;
        }
        self.settled = Some(newest);
        self.pending = self.pending.split_off(&(newest + 1));
        self.hole = None;
        self.inner.dispatch(Dispatch::Reset(newest));
        Ok(())
    }

    fn notice(&mut self, payload: &str) {
        let (cursor, change) = match Change::of_notification(payload) {
            Ok(notice) => notice,
            Err(error) => {
                tracing::warn!(%error, payload, "realtime: not a change notification");
                return;
            }
        };
        match self.settled {
            Some(settled) if cursor <= settled => {
                if self.late.remove(&cursor)
                    && let Some(change) = change
                {
                    tracing::warn!(cursor, "realtime: delivering a change that committed late");
                    self.inner.dispatch(Dispatch::Changes(vec![change]));
                }
            }
            _ => {
                self.pending.insert(cursor, change);
            }
        }
    }

    /// Delivers the pending events that follow the settled cursor without a hole.
    fn flush(&mut self) {
        let Some(mut settled) = self.settled else {
            return;
        };
        let mut ready = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() != settled + 1 {
                break;
            }
            settled += 1;
            if let Some(change) = entry.remove() {
                ready.push(change);
            }
        }
        self.settled = Some(settled);
        if !ready.is_empty() {
            self.inner.dispatch(Dispatch::Changes(ready));
        }
        if self.pending.is_empty() {
            self.hole = None;
        } else if self.hole.as_ref().is_none_or(|h| h.missing <= settled) {
            let now = Instant::now();
            self.hole = Some(Hole {
                missing: settled + 1,
                since: now,
                check_at: now + SETTLE_POLL,
                snapshot: None,
            });
        }
    }

    /// Works on the open hole: takes its snapshot, or, once the snapshot is settled (or the
    /// hole is too old), fills it from the retention and moves past it.
    async fn check_hole(&mut self) -> Result<(), FeedError> {
        let (Some(settled), Some(hole)) = (self.settled, &self.hole) else {
            return Ok(());
        };
        let since = hole.since;
        let Some((snapshot, top)) = hole.snapshot.clone() else {
            let rows = self
                .query("SELECT pg_current_snapshot()::text", vec![])
                .await?;
            let snapshot: String = match rows.first() {
                Some(row) => row.try_get_by_index(0)?,
                None => return Ok(()),
            };
            let top = self.pending.last_key_value().map_or(settled, |(k, _)| *k);
            if let Some(hole) = &mut self.hole {
                hole.snapshot = Some((snapshot, top));
                hole.check_at = Instant::now() + SETTLE_POLL;
            }
            return Ok(());
        };
        let forced = since.elapsed() > HOLD_LIMIT;
        if !forced && !self.settled(&snapshot).await? {
            if let Some(hole) = &mut self.hole {
                hole.check_at = Instant::now() + SETTLE_POLL;
            }
            return Ok(());
        }
        let rows = self
            .query(
                &format!(
                    "SELECT {RETAINED_COLUMNS} FROM {} \
                     WHERE cursor > $1 AND cursor <= $2 ORDER BY cursor",
                    migration::CHANGE_EVENTS
                ),
                vec![settled.into(), top.into()],
            )
            .await?;
        for row in &rows {
            let (cursor, change) = retained_change(row)?;
            self.pending.entry(cursor).or_insert(change);
        }
        for cursor in settled + 1..=top {
            if let std::collections::btree_map::Entry::Vacant(hole) = self.pending.entry(cursor) {
                hole.insert(None);
                if forced {
                    self.late.insert(cursor);
                }
            }
        }
        while self.late.len() > LATE_MEMORY {
            self.late.pop_first();
        }
        if forced {
            tracing::warn!(
                from = settled + 1,
                to = top,
                "realtime: a transaction held changes back too long; delivering past it"
            );
        }
        self.hole = None;
        Ok(())
    }
}
