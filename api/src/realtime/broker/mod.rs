//! The broker: one per service instance. It takes ordered change events (from the
//! PostgreSQL sequencer, or from [`Broker::publish`] on SQLite), routes each to the
//! subscribers of the row's owner, reads the row once per distinct reader, and hands every
//! subscriber its copy through a bounded buffer of its own.
//!
//! Routing is by owner key, so an event costs work for the subscribers who may see it, not
//! for every subscriber. Before an event is queued for a subscriber it passes
//! [`Scope::allows`] (the read rule) and the subscription's filter; its row is then read
//! with [`store::find_by_ids`] under the subscriber's scope (and, on PostgreSQL, inside a
//! transaction under its row-level-security claims), so SQL checks it again.
//!
//! A subscriber whose buffer is full is ended (`SLOW_CONSUMER`) and forgotten: nothing
//! ever waits for a subscriber, so writers and other subscribers never slow down.
//!
//! Parts: [`session`] (who subscribes, filters, routes), [`mailbox`] (a subscriber's
//! buffer), [`feed`] (one subscription's stream, replay first), [`dispatch`] (the task
//! that routes events and fills mailboxes).

mod dispatch;
mod feed;
mod mailbox;
mod session;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::Stream;
use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{mpsc, watch};

use self::dispatch::dispatcher;
use self::feed::{Feed, Registration, Replay, check_retained, ring_replay};
use self::mailbox::Mailbox;
use self::session::{Route, routes};
use super::change::{Change, Delivery, Write};
use crate::error::ApiError;

pub(super) use self::feed::{RETAINED_COLUMNS, retained_change};
pub use self::session::{Filter, Session};

/// The most tables a [`Filter`] can name (a bit each); `tables()` must not outgrow it.
pub const MAX_TABLES: usize = 128;

/// How many deliveries one subscriber may have waiting before it is dropped.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// How many event batches may wait for the dispatcher before subscribers are told they
/// missed events.
const DISPATCH_QUEUE: usize = 4096;

/// How long the SQLite ring keeps events for resuming subscribers.
const RING_AGE: Duration = Duration::from_secs(migration::RETENTION_MINUTES as u64 * 60);

/// The most events the SQLite ring keeps.
const RING_SIZE: usize = 100_000;

/// How long a new subscription waits for the feed to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// How many rows one replay step reads.
const REPLAY_PAGE: u64 = 500;

/// How many row reads the dispatcher runs at once.
const LOAD_CONCURRENCY: usize = 8;

/// Why a feed ended (or never started).
#[derive(Clone, Debug)]
pub enum FeedError {
    /// The subscriber fell more than [`SUBSCRIBER_BUFFER`] events behind.
    SlowConsumer,
    /// Events may have been missed (the change feed reconnected or fell behind); resume
    /// with `after`.
    Missed,
    /// `after` is older than the retained events; refetch, then subscribe afresh.
    CursorExpired(i64),
    /// `after` is not a cursor this feed has issued.
    UnknownCursor(i64),
    /// The change feed is not available.
    Unavailable,
    /// Something else went wrong.
    Api(ApiError),
}

impl From<ApiError> for FeedError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<sea_orm::DbErr> for FeedError {
    fn from(error: sea_orm::DbErr) -> Self {
        Self::Api(error.into())
    }
}

/// One subscription as the registry holds it.
struct Subscriber {
    session: Arc<Session>,
    filter: Filter,
    mailbox: Arc<Mailbox>,
}

struct Entry {
    subscriber: Arc<Subscriber>,
    routes: Vec<Route>,
}

/// What the dispatcher is asked to do, in order.
pub(super) enum Dispatch {
    /// Route these events (in cursor order).
    Changes(Vec<Change>),
    /// Everything up to this cursor is settled: end every subscriber (they may have missed
    /// events) and continue from here. Also how the PostgreSQL feed starts.
    Reset(i64),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Starting,
    Ready,
}

struct State {
    /// The last cursor routed: every later event goes to the subscribers registered now.
    routed: i64,
    /// SQLite: the last cursor assigned.
    published: i64,
    /// SQLite: the retained events, oldest first.
    ring: VecDeque<(Instant, Arc<Change>)>,
    entries: HashMap<u64, Entry>,
    routes: HashMap<Route, HashMap<u64, Arc<Subscriber>>>,
    next_id: u64,
}

impl State {
    fn add_routes(&mut self, id: u64, subscriber: &Arc<Subscriber>, routes: &[Route]) {
        for route in routes {
            self.routes
                .entry(*route)
                .or_default()
                .insert(id, subscriber.clone());
        }
    }

    fn remove_routes(&mut self, id: u64, routes: &[Route]) {
        for route in routes {
            if let Some(subscribers) = self.routes.get_mut(route) {
                subscribers.remove(&id);
                if subscribers.is_empty() {
                    self.routes.remove(route);
                }
            }
        }
    }

    fn end(&mut self, id: u64, reason: u8) {
        if let Some(entry) = self.entries.remove(&id) {
            entry.subscriber.mailbox.end(reason);
            self.remove_routes(id, &entry.routes);
        }
    }

    /// The subscribers `change` goes to: those listening on its owner's route (or, for a
    /// shared row, on its kind's) and on every row, that may read it and want it.
    fn recipients(&self, change: &Change) -> Vec<(u64, Arc<Subscriber>)> {
        let table = change.table();
        let Some(spec) = table.spec else {
            return Vec::new();
        };
        let route = match change.owner {
            Some(owner) => Some(Route::Owner(spec.tenant, owner)),
            None if spec.shared_when_null => Some(Route::Shared(spec.tenant)),
            None => None,
        };
        route
            .iter()
            .chain([&Route::All])
            .filter_map(|route| self.routes.get(route))
            .flatten()
            .filter(|(_, s)| {
                s.filter.matches(change) && s.session.access().scope.allows(table, change.owner)
            })
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }
}

pub(super) struct Inner {
    pub(super) db: DatabaseConnection,
    postgres: bool,
    state: Mutex<State>,
    queue: mpsc::Sender<Dispatch>,
    queue_rx: Mutex<Option<mpsc::Receiver<Dispatch>>>,
    overflow: AtomicBool,
    status: watch::Sender<Status>,
    started: AtomicBool,
    /// PostgreSQL: whether the `LISTEN` connection is up (for `/ready`).
    pub(super) listening: AtomicBool,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues work for the dispatcher without ever waiting: when the queue is full the
    /// events are dropped and every subscriber is told it missed events (the retention
    /// still has them, so they resume).
    pub(super) fn dispatch(&self, work: Dispatch) {
        if let Err(error) = self.queue.try_send(work) {
            if let Dispatch::Changes(changes) = error.into_inner() {
                crate::telemetry::metrics::events_dropped("queue_full", changes.len());
            }
            tracing::warn!("realtime dispatcher is behind; subscribers will resume");
            self.overflow.store(true, Ordering::Release);
        }
    }

    fn unregister(&self, id: u64) {
        let mut state = self.state();
        if let Some(entry) = state.entries.remove(&id) {
            state.remove_routes(id, &entry.routes);
        }
    }

    fn end_all(&self, reason: u8) {
        let mut state = self.state();
        let ids: Vec<u64> = state.entries.keys().copied().collect();
        for id in ids {
            state.end(id, reason);
        }
    }
}

/// The realtime broker of one service instance (cheap to clone).
#[derive(Clone)]
pub struct Broker {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("postgres", &self.inner.postgres)
            .finish_non_exhaustive()
    }
}

impl Broker {
    /// A broker over `db`. It starts working on first use, or at once with [`Broker::start`].
    pub fn new(db: DatabaseConnection) -> Self {
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        // SQLite cursors start at the clock (in microseconds), so they keep growing across
        // restarts and a cursor from before a restart reads as expired, not as new.
        let base = if postgres {
            0
        } else {
            chrono::Utc::now().timestamp_micros()
        };
        let (queue, queue_rx) = mpsc::channel(DISPATCH_QUEUE);
        let (status, _) = watch::channel(if postgres {
            Status::Starting
        } else {
            Status::Ready
        });
        Self {
            inner: Arc::new(Inner {
                db,
                postgres,
                state: Mutex::new(State {
                    routed: base,
                    published: base,
                    ring: VecDeque::new(),
                    entries: HashMap::new(),
                    routes: HashMap::new(),
                    next_id: 0,
                }),
                queue,
                queue_rx: Mutex::new(Some(queue_rx)),
                overflow: AtomicBool::new(false),
                status,
                started: AtomicBool::new(false),
                listening: AtomicBool::new(false),
            }),
        }
    }

    /// Starts the dispatcher (and on PostgreSQL the listener) if a Tokio runtime is running
    /// and they have not started yet.
    pub fn start(&self) {
        if tokio::runtime::Handle::try_current().is_err()
            || self.inner.started.swap(true, Ordering::AcqRel)
        {
            return;
        }
        let receiver = self
            .inner
            .queue_rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(receiver) = receiver {
            tokio::spawn(dispatcher(self.inner.clone(), receiver));
        }
        if self.inner.postgres {
            super::postgres::spawn(self.inner.clone());
        }
    }

    /// Whether the change feed is up: on PostgreSQL, the `LISTEN` connection is listening
    /// and the feed has started; on SQLite, always.
    pub fn is_listening(&self) -> bool {
        !self.inner.postgres
            || (self.inner.listening.load(Ordering::Acquire)
                && *self.inner.status.borrow() == Status::Ready)
    }

    /// How many change batches wait for the dispatcher.
    pub fn queue_depth(&self) -> usize {
        self.inner.queue.max_capacity() - self.inner.queue.capacity()
    }

    /// How many subscriptions are open.
    pub fn subscriptions(&self) -> usize {
        self.inner.state().entries.len()
    }

    /// Publishes writes the service has committed, in commit order (SQLite). On PostgreSQL
    /// this does nothing: the database's triggers publish every write, whoever makes it.
    pub fn publish(&self, writes: impl IntoIterator<Item = Write>) {
        if self.inner.postgres {
            return;
        }
        self.start();
        let mut state = self.inner.state();
        let mut changes = Vec::new();
        for write in writes {
            let Some(change) = Change::of_write(state.published + 1, &write) else {
                tracing::warn!(
                    table = write.table,
                    "realtime: no such table; not published"
                );
                continue;
            };
            state.published = change.cursor;
            state
                .ring
                .push_back((Instant::now(), Arc::new(change.clone())));
            changes.push(change);
        }
        while state.ring.len() > RING_SIZE
            || state
                .ring
                .front()
                .is_some_and(|(at, _)| at.elapsed() > RING_AGE && state.ring.len() > 1)
        {
            state.ring.pop_front();
        }
        if !changes.is_empty() {
            // Queued under the lock, so the queue's order is the cursors' order.
            self.inner.dispatch(Dispatch::Changes(changes));
        }
    }

    /// Subscribes `session` to the events `filter` wants: first those after `after` (from
    /// the retention), then live ones, each exactly once and in cursor order.
    pub async fn subscribe(
        &self,
        session: Arc<Session>,
        filter: Filter,
        after: Option<i64>,
    ) -> Result<impl Stream<Item = Result<Arc<Delivery>, FeedError>> + Send + 'static, FeedError>
    {
        Ok(self.subscribe_at(session, filter, after).await?.1)
    }

    /// [`Broker::subscribe`], with the cursor the feed starts after: resuming after it,
    /// before any event came, misses nothing.
    pub async fn subscribe_at(
        &self,
        session: Arc<Session>,
        filter: Filter,
        after: Option<i64>,
    ) -> Result<
        (
            i64,
            impl Stream<Item = Result<Arc<Delivery>, FeedError>> + Send + 'static,
        ),
        FeedError,
    > {
        self.start();
        let mut status = self.inner.status.subscribe();
        match tokio::time::timeout(READY_TIMEOUT, status.wait_for(|s| *s == Status::Ready)).await {
            Ok(Ok(_)) => {}
            _ => return Err(FeedError::Unavailable),
        }
        let mailbox = Arc::new(Mailbox::new());
        let (id, routed, replay) = {
            let mut state = self.inner.state();
            let routes = routes(&session.scope());
            let replay = match after {
                Some(after) if !self.inner.postgres => {
                    Some(ring_replay(&state, &session, &filter, after)?)
                }
                _ => None,
            };
            let id = state.next_id;
            state.next_id += 1;
            let subscriber = Arc::new(Subscriber {
                session: session.clone(),
                filter: filter.clone(),
                mailbox: mailbox.clone(),
            });
            state.add_routes(id, &subscriber, &routes);
            state.entries.insert(id, Entry { subscriber, routes });
            (id, state.routed, replay)
        };
        let registration = Registration {
            inner: self.inner.clone(),
            id,
        };
        let replay = match (after, replay) {
            (Some(_), Some(ring)) => Some(Replay::Ring(ring)),
            (Some(after), None) => {
                check_retained(&self.inner.db, after, routed).await?;
                Some(Replay::Table {
                    next: after,
                    until: routed,
                })
            }
            (None, _) => None,
        };
        let start = routed.max(after.unwrap_or(i64::MIN));
        let feed = Feed {
            inner: self.inner.clone(),
            session,
            filter,
            _registration: registration,
            mailbox,
            replay,
            buffer: VecDeque::new(),
            skip_until: start,
        };
        let stream = futures_util::stream::unfold(Some(feed), |feed| async move {
            let mut feed = feed?;
            let item = feed.next().await;
            let keep = item.is_ok().then_some(feed);
            Some((item, keep))
        });
        Ok((start, stream))
    }
}
