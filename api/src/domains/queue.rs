//! Rows noted on the request path and written off it, in batches: a bounded queue in
//! memory ([`WriteQueue`]) that a task of `stratix serve` empties every period
//! ([`write_every`]) and once more at shutdown, as `service_role`. Noting never fails or
//! waits on the database, so a request is never failed or slowed by it; a full queue drops
//! the new row and counts it. What is queued when the process dies is lost (at most one
//! period's). Data access audits and shops' usage logs are written this way.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sea_orm::sea_query::InsertStatement;
use sea_orm::{ConnectionTrait as _, DatabaseConnection};

use crate::domains::ServiceWork;
use crate::error::ApiResult;

/// The most rows one statement inserts.
pub const BATCH: usize = 500;

/// A row type written through a [`WriteQueue`].
pub trait Queued: Clone + Send + 'static {
    /// The most rows waiting in memory, unless the queue is made with another capacity.
    const CAPACITY: usize;

    /// What the rows are, for log lines (`data access audits`).
    const WHAT: &'static str;

    /// Counts `n` rows dropped because the queue was full (a Prometheus counter).
    fn dropped(n: usize);

    /// The statement inserting `rows` (at most [`BATCH`], at least one).
    fn insert(rows: &[Self]) -> ApiResult<InsertStatement>;
}

/// The rows waiting to be written (shared by every request of the process; clones share
/// it).
#[derive(Debug)]
pub struct WriteQueue<T>(Arc<Inner<T>>);

#[derive(Debug)]
struct Inner<T> {
    rows: Mutex<VecDeque<T>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl<T> Clone for WriteQueue<T> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<T: Queued> Default for WriteQueue<T> {
    fn default() -> Self {
        Self::with_capacity(T::CAPACITY)
    }
}

impl<T: Queued> WriteQueue<T> {
    /// An empty queue holding at most `capacity` rows.
    pub fn with_capacity(capacity: usize) -> Self {
        Self(Arc::new(Inner {
            rows: Mutex::default(),
            capacity,
            dropped: AtomicU64::new(0),
        }))
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, VecDeque<T>> {
        self.0.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `row`; when the queue is full it is dropped and counted.
    pub fn note(&self, row: T) {
        let kept = {
            let mut rows = self.rows();
            let room = rows.len() < self.0.capacity;
            if room {
                rows.push_back(row);
            }
            room
        };
        if !kept {
            self.0.dropped.fetch_add(1, Ordering::Relaxed);
            T::dropped(1);
        }
    }

    /// How many rows wait to be written.
    pub fn pending(&self) -> usize {
        self.rows().len()
    }

    /// How many rows this queue dropped because it was full.
    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    /// Writes every queued row, in one transaction as `service_role`, [`BATCH`] rows a
    /// statement; on failure they go back to the front of the queue. Returns how many
    /// were written.
    pub async fn flush(&self, db: &DatabaseConnection) -> ApiResult<usize> {
        let taken: Vec<T> = self.rows().drain(..).collect();
        if taken.is_empty() {
            return Ok(0);
        }
        let written = write(db, &taken).await;
        if written.is_err() {
            let mut rows = self.rows();
            for row in taken.iter().rev() {
                rows.push_front(row.clone());
            }
            rows.truncate(self.0.capacity);
        }
        written.map(|()| taken.len())
    }
}

async fn write<T: Queued>(db: &DatabaseConnection, rows: &[T]) -> ApiResult<()> {
    let work = ServiceWork::begin(db).await?;
    let ctx = work.ctx();
    for batch in rows.chunks(BATCH) {
        ctx.db.execute(&T::insert(batch)?).await?;
    }
    work.finish(true).await?;
    Ok(())
}

/// The writer of `queue`, a task of `stratix serve` (every instance writes its own queue):
/// flushes it every `period`, for ever.
pub async fn write_every<T: Queued>(
    queue: WriteQueue<T>,
    db: DatabaseConnection,
    period: Duration,
) {
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        if let Err(error) = queue.flush(&db).await {
            tracing::warn!(%error, "writing {} failed", T::WHAT);
        }
    }
}

/// The last flush of `queue` at shutdown, once its writer has stopped.
pub async fn flush_at_exit<T: Queued>(queue: &WriteQueue<T>, db: &DatabaseConnection) {
    if let Err(error) = queue.flush(db).await {
        tracing::warn!(%error, "writing the last {} failed", T::WHAT);
    }
}
