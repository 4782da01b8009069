//! What every handler can reach: the pool, the schema, the keys, the limits, the plans and
//! the realtime broker.

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::auth::Keys;
use crate::graphql::Limits;
use crate::graphql::plan::PlanCache;
use crate::store::Scope;

/// What a deployment switches on or off, beside the limits (from [`crate::Config`]; the
/// defaults are what the tests run with).
#[derive(Clone, Debug)]
pub struct Options {
    /// The request limits.
    pub limits: Limits,
    /// Origins browsers may call the API from (`STRATIX_CORS_ORIGINS`): none means
    /// same-origin only, `*` any origin without credentials.
    pub cors_origins: Vec<String>,
    /// Whether the schema answers introspection (`__schema`, `__type`).
    pub introspection: bool,
    /// Whether GraphiQL is served at `/`.
    pub graphiql: bool,
    /// Development mode (SQLite without JWT keys): responses show
    /// `extensions.sqlStatements` to every caller, not only to `service_role`.
    pub development: bool,
    /// The cost throttle and the sign-in limits.
    pub throttle: crate::throttle::ThrottleConfig,
    /// Whether webhook endpoints may be plain `http://` to a loopback address
    /// (`STRATIX_WEBHOOKS_ALLOW_LOOPBACK`, or development mode): for local receivers in
    /// development and tests, never in production.
    pub webhooks_allow_loopback: bool,
    /// The most shops' API requests waiting in memory for `usage_logs`; past it they are
    /// dropped and counted.
    pub usage_log_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cors_origins: Vec::new(),
            introspection: true,
            graphiql: true,
            development: false,
            throttle: crate::throttle::ThrottleConfig::default(),
            webhooks_allow_loopback: false,
            usage_log_capacity: crate::domains::shopify::usage::CAPACITY,
        }
    }
}

/// The application's shared state, cloned into every handler.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The GraphQL schema.
    pub schema: async_graphql::dynamic::Schema,
    /// The keys credentials are verified with.
    pub keys: Arc<Keys>,
    /// The request limits (the options' own).
    pub limits: Limits,
    /// The deployment's switches.
    pub options: Arc<Options>,
    /// Open WebSocket operations per principal, for the per-principal cap.
    pub operations: crate::realtime::socket::OpenOperations,
    /// Compiled read plans (the executor's fast path), by document.
    pub plans: Arc<PlanCache>,
    /// Whether the API scopes reads and writes by the principal. Always true in service;
    /// tests turn it off to show that PostgreSQL's row-level security still holds.
    pub api_scoping: bool,
    /// The realtime broker: subscriptions, and (on SQLite) the writes requests publish.
    pub realtime: crate::realtime::Broker,
    /// Users' API requests, counted for `usage_metrics`.
    pub usage: crate::domains::accounts::usage::RequestMeter,
    /// Data access audits waiting to be written.
    pub audits: crate::domains::distribution::audits::AuditLog,
    /// Shops' API requests waiting to be written to `usage_logs`.
    pub usage_logs: crate::domains::shopify::usage::UsageLogs,
    /// The server's shutdown signal (`/ready` fails and WebSockets close once it begins).
    pub shutdown: crate::lifecycle::Shutdown,
    /// Development mode's token, which GraphiQL opens with; `None` otherwise.
    pub development_token: Option<Arc<str>>,
    /// Persisted documents by hash (Apollo's automatic persisted queries, or the
    /// allow-list).
    pub persisted: Arc<crate::persisted::Persisted>,
    /// The cost buckets and sign-in limits of this instance.
    pub throttle: crate::throttle::Throttle,
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
