//! Realtime: GraphQL subscriptions that stand in for Supabase Realtime.
//!
//! - **Transport** ([`socket`]): WebSocket on `/graphql`, `graphql-transport-ws` and the
//!   legacy `graphql-ws`; credentials in `connection_init`; close codes 4403 (refused, or
//!   the token expired), 4408 (no `connection_init`), 4409 (duplicate id), 1001 (shutdown).
//! - **Closing** ([`resume`]): before the server closes a socket, each subscription is
//!   told the cursor to resume after.
//! - **Feeds** ([`schema`]): typed (`aiTaskUpdated`, `crawlJobUpdated`,
//!   `notificationAdded`, `messageReceived`, `experimentResultsUpdated`) and generic
//!   (`rowChanged`). Every event is checked with [`Scope::allows`](crate::store::Scope::allows),
//!   the read rule, deletes included, and its row is read under the subscriber's scope.
//! - **Source**: on PostgreSQL, triggers append each change to `change_events` and
//!   `pg_notify` its keys; each instance listens once ([`postgres`]). On SQLite the service
//!   publishes its own writes with [`Broker::publish`]: call it after the write commits.
//! - **Resume**: events carry a monotonic cursor; `after: <cursor>` replays the retained
//!   events (ten minutes: `change_events` on PostgreSQL, a ring in memory on SQLite), then
//!   goes live, none lost or repeated.
//! - **Slow consumers**: a bounded buffer per subscriber; one that falls behind is told and
//!   dropped, never holding up the others or the writers ([`broker`]).

pub mod broker;
pub mod change;
mod postgres;
pub mod resume;
pub mod schema;
pub mod socket;

pub use broker::{Broker, FeedError, Filter, SUBSCRIBER_BUFFER, Session};
pub use change::{Change, Delivery, Op, Write};
