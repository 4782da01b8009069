//! What every handler can reach: the pool, the schema, the keys, the limits, the plans and
//! the realtime broker.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::Keys;
use crate::graphql::Limits;
use crate::graphql::plan::PlanCache;
use crate::store::Scope;

/// The application's shared state, cloned into every handler.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The GraphQL schema.
    pub schema: async_graphql::dynamic::Schema,
    /// The keys credentials are verified with.
    pub keys: Arc<Keys>,
    /// The request limits.
    pub limits: Limits,
    /// Compiled read plans (the executor's fast path), by document.
    pub plans: Arc<PlanCache>,
    /// Whether the API scopes reads and writes by the principal. Always true in service;
    /// tests turn it off to show that PostgreSQL's row-level security still holds.
    pub api_scoping: bool,
    /// The realtime broker: subscriptions, and (on SQLite) the writes requests publish.
    pub realtime: crate::realtime::Broker,
    /// Users' API requests, counted for `usage_metrics`.
    pub usage: crate::domains::accounts::usage::RequestMeter,
    /// The server's shutdown signal (`/ready` fails and WebSockets close once it begins).
    pub shutdown: crate::lifecycle::Shutdown,
    /// Development mode's token, which GraphiQL opens with; `None` otherwise.
    pub development_token: Option<Arc<str>>,
    /// Persisted documents by hash (Apollo's automatic persisted queries, or the
    /// allow-list).
    pub persisted: Arc<crate::persisted::Persisted>,
}

impl AppState {
    /// The scope requests run with: the principal's, unless a test switched the API's own
    /// scoping off (then only row-level security filters).
    pub fn request_scope(&self, scope: Scope) -> Scope {
        if self.api_scoping {
            scope
        } else {
            Scope::Service
        }
    }
}
