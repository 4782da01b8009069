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

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use migration::catalog::Tenant;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::change::{Change, Delivery, Op, Write};
use crate::auth::{self, Principal};
use crate::db::{End, RequestDb};
use crate::error::ApiError;
use crate::store::{self, Columns, Row, Scope};
use crate::tables::{Table, tables};

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

const ENDED_NOT: u8 = 0;
const ENDED_SLOW: u8 = 1;
const ENDED_MISSED: u8 = 2;

/// Who is subscribed, as the broker sees it: the principal, its claims and its scope. The
/// scope is refreshed when the principal's distributor memberships change.
#[derive(Debug)]
pub struct Session {
    /// Who.
    pub principal: Principal,
    access: RwLock<Arc<Access>>,
}

/// How a session reads rows: its scope and its row-level-security claims. Sessions of the
/// same principal share reads.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Access {
    scope: Scope,
    claims: String,
}

impl Session {
    /// A session of `principal` reading with `scope`.
    pub fn new(principal: Principal, scope: Scope) -> Self {
        let claims = principal.claims().to_string();
        Self {
            principal,
            access: RwLock::new(Arc::new(Access { scope, claims })),
        }
    }

    /// The scope the session reads with now.
    pub fn scope(&self) -> Scope {
        self.access().scope.clone()
    }

    fn access(&self) -> Arc<Access> {
        self.access
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set_scope(&self, scope: Scope) {
        let claims = self.principal.claims().to_string();
        *self
            .access
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Arc::new(Access { scope, claims });
    }
}

/// Which events a subscription wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// A bit per table (see [`MAX_TABLES`]).
    tables: u128,
    ops: u8,
    id: Option<Uuid>,
    key: Option<Uuid>,
}

impl Filter {
    /// Events of these tables (indexes into [`tables()`]) and operations.
    pub fn new(tables: impl IntoIterator<Item = usize>, ops: impl IntoIterator<Item = Op>) -> Self {
        Self {
            tables: tables
                .into_iter()
                .filter(|t| *t < MAX_TABLES)
                .fold(0, |bits, t| bits | 1 << t),
            ops: ops.into_iter().fold(0, |bits, op| bits | op.bit()),
            id: None,
            key: None,
        }
    }

    /// Only the row `id`.
    pub fn id(self, id: Uuid) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }

    /// Only rows whose feed key is `key`.
    pub fn key(self, key: Uuid) -> Self {
        Self {
            key: Some(key),
            ..self
        }
    }

    /// Whether `change` is wanted.
    pub fn matches(&self, change: &Change) -> bool {
        change.table < MAX_TABLES
            && self.tables & 1 << change.table != 0
            && self.ops & change.op.bit() != 0
            && self.id.is_none_or(|id| id == change.id)
            && self.key.is_none_or(|key| Some(key) == change.key)
    }

    fn table_names(&self) -> Vec<&'static str> {
        tables()
            .all
            .iter()
            .filter(|t| t.index < MAX_TABLES && self.tables & 1 << t.index != 0)
            .map(|t| t.name)
            .collect()
    }
}

/// Where a subscriber listens: the owners whose rows it may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Route {
    /// Rows owned by this tenant.
    Owner(Tenant, Uuid),
    /// Shared rows (owner null) of tables of this tenant kind.
    Shared(Tenant),
    /// Every row (`service_role`).
    All,
}

fn routes(scope: &Scope) -> Vec<Route> {
    match scope {
        Scope::Service => vec![Route::All],
        Scope::User { id, distributors } => {
            let mut routes = vec![Route::Owner(Tenant::User, *id), Route::Shared(Tenant::User)];
            routes.extend(
                distributors
                    .iter()
                    .map(|d| Route::Owner(Tenant::Distributor, *d)),
            );
            if !distributors.is_empty() {
                routes.push(Route::Shared(Tenant::Distributor));
            }
            routes
        }
        Scope::Shop { id } => vec![Route::Owner(Tenant::Shop, *id), Route::Shared(Tenant::Shop)],
        Scope::Nobody => Vec::new(),
    }
}

/// One subscriber's buffer: the deliveries waiting for it, at most [`SUBSCRIBER_BUFFER`],
/// and why it ended, if it did. (A queue of its own rather than a channel: it holds
/// nothing while idle, and idle subscriptions are the common case.)
struct Mailbox {
    queue: Mutex<VecDeque<Arc<Delivery>>>,
    waker: futures_util::task::AtomicWaker,
    ended: AtomicU8,
}

/// Why a delivery was not queued.
struct Full;

impl Mailbox {
    fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            waker: futures_util::task::AtomicWaker::new(),
            ended: AtomicU8::new(ENDED_NOT),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Arc<Delivery>>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `delivery`, unless the subscriber is [`SUBSCRIBER_BUFFER`] behind.
    fn push(&self, delivery: Arc<Delivery>) -> Result<(), Full> {
        {
            let mut queue = self.queue();
            if queue.len() >= SUBSCRIBER_BUFFER {
                return Err(Full);
            }
            queue.push_back(delivery);
        }
        self.waker.wake();
        Ok(())
    }

    /// Ends the subscription: the feed reports `reason` next.
    fn end(&self, reason: u8) {
        self.ended.store(reason, Ordering::Release);
        self.queue().clear();
        self.waker.wake();
    }

    fn ended(&self) -> Option<FeedError> {
        match self.ended.load(Ordering::Acquire) {
            ENDED_SLOW => Some(FeedError::SlowConsumer),
            ENDED_MISSED => Some(FeedError::Missed),
            _ => None,
        }
    }

    /// The next delivery, or why the subscription ended.
    async fn next(&self) -> Result<Arc<Delivery>, FeedError> {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if let Some(reason) = self.ended() {
                return std::task::Poll::Ready(Err(reason));
            }
            match self.queue().pop_front() {
                Some(delivery) => std::task::Poll::Ready(Ok(delivery)),
                None => std::task::Poll::Pending,
            }
        })
        .await
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
        if self.queue.try_send(work).is_err() {
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
        let feed = Feed {
            inner: self.inner.clone(),
            session,
            filter,
            _registration: registration,
            mailbox,
            replay,
            buffer: VecDeque::new(),
            skip_until: routed.max(after.unwrap_or(i64::MIN)),
        };
        Ok(futures_util::stream::unfold(
            Some(feed),
            |feed| async move {
                let mut feed = feed?;
                let item = feed.next().await;
                let keep = item.is_ok().then_some(feed);
                Some((item, keep))
            },
        ))
    }
}

/// SQLite: the retained events after `after` that `session` wants, checked against the
/// ring's bounds.
fn ring_replay(
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
async fn check_retained(db: &DatabaseConnection, after: i64, routed: i64) -> Result<(), FeedError> {
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
    if after > routed.max(newest.unwrap_or(routed)) {
        return Err(FeedError::UnknownCursor(after));
    }
    match oldest {
        Some(oldest) if after < oldest - 1 => Err(FeedError::CursorExpired(after)),
        None if after < routed => Err(FeedError::CursorExpired(after)),
        _ => Ok(()),
    }
}

/// Removes its subscription from the registry when the feed is dropped.
struct Registration {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.inner.unregister(self.id);
    }
}

enum Replay {
    /// SQLite: the events to replay, taken from the ring at subscription.
    Ring(VecDeque<Arc<Change>>),
    /// PostgreSQL: read `change_events` after `next` up to `until`.
    Table { next: i64, until: i64 },
}

/// One subscription's event stream.
struct Feed {
    inner: Arc<Inner>,
    session: Arc<Session>,
    filter: Filter,
    _registration: Registration,
    mailbox: Arc<Mailbox>,
    replay: Option<Replay>,
    buffer: VecDeque<Arc<Delivery>>,
    skip_until: i64,
}

impl Feed {
    async fn next(&mut self) -> Result<Arc<Delivery>, FeedError> {
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
    let quoted = |items: Vec<String>| {
        items
            .iter()
            .map(|s| format!("'{s}'"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let tables = quoted(
        filter
            .table_names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    );
    let owners = match session.scope() {
        Scope::Service => None,
        Scope::User { id, distributors } => Some(
            std::iter::once(id)
                .chain(distributors)
                .map(|u| u.to_string())
                .collect(),
        ),
        Scope::Shop { id } => Some(vec![id.to_string()]),
        Scope::Nobody => return Ok(Vec::new()),
    };
    let mut sql = format!(
        "SELECT cursor, table_name, op, row_id, owner, feed_key FROM {} \
         WHERE cursor > $1 AND cursor <= $2 AND table_name IN ({tables})",
        migration::CHANGE_EVENTS
    );
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    if let Some(owners) = owners {
        sql.push_str(&format!(
            " AND (owner IN ({}) OR owner IS NULL)",
            quoted(owners)
        ));
    }
    sql.push_str(&format!(" ORDER BY cursor LIMIT {REPLAY_PAGE}"));
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [after.into(), until.into()],
        ))
        .await?;
    rows.iter().map(retained_change).collect()
}

/// One row of `change_events` (cursor, table_name, op, row_id, owner, feed_key).
pub(super) fn retained_change(
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

/// Reads rows of `table` with `access`'s scope, on PostgreSQL inside a transaction under
/// its claims (row-level security applies), every column the API serves.
async fn load_rows(
    db: &DatabaseConnection,
    access: &Access,
    table: &Table,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, Arc<Row>>, FeedError> {
    let claims: serde_json::Value =
        serde_json::from_str(&access.claims).unwrap_or(serde_json::Value::Null);
    let request = RequestDb::begin(db, &claims).await?;
    let columns = (0..table.columns.len()).fold(Columns::default(), |c, i| c.with(i));
    let found = store::find_by_ids(&request, &access.scope, table, columns, ids).await;
    request.finish(End::Discard).await?;
    let found = found?;
    Ok(found
        .into_iter()
        .map(|(id, row)| (id, Arc::new(row)))
        .collect())
}

/// The dispatcher task: routes queued events, reads their rows, fills the buffers.
async fn dispatcher(inner: Arc<Inner>, mut queue: mpsc::Receiver<Dispatch>) {
    while let Some(first) = queue.recv().await {
        if inner.overflow.swap(false, Ordering::AcqRel) {
            inner.end_all(ENDED_MISSED);
        }
        let mut work = vec![first];
        while work.len() < 64 {
            match queue.try_recv() {
                Ok(more) => work.push(more),
                Err(_) => break,
            }
        }
        let mut changes = Vec::new();
        for item in work {
            match item {
                Dispatch::Changes(more) => changes.extend(more),
                Dispatch::Reset(cursor) => {
                    deliver(&inner, std::mem::take(&mut changes)).await;
                    inner.end_all(ENDED_MISSED);
                    inner.state().routed = cursor;
                    inner.status.send_replace(Status::Ready);
                }
            }
        }
        deliver(&inner, changes).await;
    }
}

/// Delivers `changes`; a change to `user_profiles` refreshes that user's scope before the
/// changes after it are routed.
async fn deliver(inner: &Inner, changes: Vec<Change>) {
    let memberships = tables().get("user_profiles").map(|t| t.index);
    let mut batch = Vec::new();
    for change in changes {
        let refresh = (Some(change.table) == memberships)
            .then_some(change.key)
            .flatten();
        batch.push(change);
        if let Some(user) = refresh {
            deliver_batch(inner, std::mem::take(&mut batch)).await;
            refresh_scopes(inner, user).await;
        }
    }
    deliver_batch(inner, batch).await;
}

async fn deliver_batch(inner: &Inner, changes: Vec<Change>) {
    let Some(last) = changes.last().map(|c| c.cursor) else {
        return;
    };
    type Recipients = Vec<(u64, Arc<Subscriber>, Arc<Access>)>;
    let routed: Vec<(Arc<Change>, Recipients)> = {
        let mut state = inner.state();
        state.routed = state.routed.max(last);
        changes
            .into_iter()
            .map(|change| {
                let recipients = state
                    .recipients(&change)
                    .into_iter()
                    .map(|(id, s)| {
                        let access = s.session.access();
                        (id, s, access)
                    })
                    .collect();
                (Arc::new(change), recipients)
            })
            .collect()
    };
    // One read per table and distinct reader, for the whole batch.
    let mut wanted: HashMap<(usize, Arc<Access>), HashSet<Uuid>> = HashMap::new();
    for (change, recipients) in &routed {
        if change.op == Op::Delete {
            continue;
        }
        for (_, _, access) in recipients {
            wanted
                .entry((change.table, access.clone()))
                .or_default()
                .insert(change.id);
        }
    }
    let loads = futures_util::stream::iter(wanted)
        .map(|((table, access), ids)| async move {
            let ids: Vec<Uuid> = ids.into_iter().collect();
            let rows = load_rows(&inner.db, &access, &tables().all[table], &ids).await;
            ((table, access), rows)
        })
        .buffer_unordered(LOAD_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    let mut loaded: HashMap<(usize, Arc<Access>), HashMap<Uuid, Arc<Row>>> = HashMap::new();
    let mut failed: HashSet<(usize, Arc<Access>)> = HashSet::new();
    for (key, rows) in loads {
        match rows {
            Ok(rows) => {
                loaded.insert(key, rows);
            }
            Err(error) => {
                tracing::error!(?error, "realtime: reading changed rows failed");
                failed.insert(key);
            }
        }
    }
    let mut slow = Vec::new();
    let mut missed = Vec::new();
    for (change, recipients) in routed {
        let mut copies: HashMap<Arc<Access>, Arc<Delivery>> = HashMap::new();
        for (id, subscriber, access) in recipients {
            let key = (change.table, access.clone());
            if failed.contains(&key) {
                missed.push(id);
                continue;
            }
            let delivery = copies
                .entry(access)
                .or_insert_with(|| {
                    let node = match change.op {
                        Op::Delete => None,
                        _ => loaded
                            .get(&key)
                            .and_then(|rows| rows.get(&change.id))
                            .cloned(),
                    };
                    Arc::new(Delivery {
                        change: change.clone(),
                        node,
                    })
                })
                .clone();
            if subscriber.mailbox.push(delivery).is_err() {
                slow.push(id);
            }
        }
    }
    if !slow.is_empty() || !missed.is_empty() {
        let mut state = inner.state();
        for id in slow {
            state.end(id, ENDED_SLOW);
        }
        for id in missed {
            state.end(id, ENDED_MISSED);
        }
    }
}

/// Re-reads the scope of `user`'s sessions after a membership change, and re-routes their
/// subscriptions.
async fn refresh_scopes(inner: &Inner, user: Uuid) {
    let sessions: Vec<Arc<Session>> = {
        let state = inner.state();
        let mut seen = HashSet::new();
        state
            .routes
            .get(&Route::Owner(Tenant::User, user))
            .into_iter()
            .flatten()
            .map(|(_, s)| s.session.clone())
            .filter(|s| seen.insert(Arc::as_ptr(s) as usize))
            .collect()
    };
    let Some(principal) = sessions.first().map(|s| s.principal.clone()) else {
        return;
    };
    let refreshed = auth::scope_of(&inner.db, &principal).await;
    let mut state = inner.state();
    let ids: Vec<u64> = state
        .entries
        .iter()
        .filter(|(_, e)| {
            sessions
                .iter()
                .any(|s| Arc::ptr_eq(s, &e.subscriber.session))
        })
        .map(|(id, _)| *id)
        .collect();
    let scope = match refreshed {
        Ok(scope) => scope,
        Err(error) => {
            // Not knowing the scope, stop: the subscribers resume and are scoped afresh.
            tracing::error!(?error, %user, "realtime: refreshing a scope failed");
            for id in ids {
                state.end(id, ENDED_MISSED);
            }
            return;
        }
    };
    for session in &sessions {
        session.set_scope(scope.clone());
    }
    let new_routes = routes(&scope);
    for id in ids {
        if let Some(entry) = state.entries.remove(&id) {
            state.remove_routes(id, &entry.routes);
            state.add_routes(id, &entry.subscriber, &new_routes);
            state.entries.insert(
                id,
                Entry {
                    subscriber: entry.subscriber,
                    routes: new_routes.clone(),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_fits_a_filter() {
        assert!(tables().all.len() <= MAX_TABLES);
        let last = tables().all.len() - 1;
        let filter = Filter::new([0, last], [Op::Delete]);
        assert_eq!(filter.table_names().len(), 2);
    }
}
