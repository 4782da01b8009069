//! Prometheus metrics: one process-wide recorder (the `metrics` facade), rendered by
//! `GET /metrics`. Counters and histograms are updated where things happen; gauges that
//! describe a state (pool, subscriptions, queues) are read when scraped.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::http::StatusCode;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::RequestRecord;

/// HTTP requests, by route and status.
pub const HTTP_REQUESTS: &str = "stratix_http_requests_total";
/// GraphQL requests, by operation name and outcome (`OK` or an error code).
pub const GRAPHQL_REQUESTS: &str = "stratix_graphql_requests_total";
/// GraphQL request latency in seconds, by operation name.
pub const GRAPHQL_DURATION: &str = "stratix_graphql_request_duration_seconds";
/// SQL statements per GraphQL request, by operation name.
pub const GRAPHQL_STATEMENTS: &str = "stratix_graphql_sql_statements";
/// Read requests a compiled plan answered.
pub const PLAN_HITS: &str = "stratix_plan_cache_hits_total";
/// Read requests the executor answered (no plan, or the plan handed over).
pub const PLAN_MISSES: &str = "stratix_plan_cache_misses_total";
/// Pool connections, by state (`in_use`, `idle`), and the pool's maximum.
pub const POOL_CONNECTIONS: &str = "stratix_db_pool_connections";
/// The pool's most connections.
pub const POOL_MAX: &str = "stratix_db_pool_max_connections";
/// Request transactions that found every pool connection in use and waited for one.
pub const POOL_WAITS: &str = "stratix_db_pool_waits_total";
/// How long those waits took, in seconds.
pub const POOL_WAIT: &str = "stratix_db_pool_wait_seconds";
/// Open GraphQL subscriptions.
pub const SUBSCRIPTIONS: &str = "stratix_subscriptions_open";
/// Open GraphQL WebSocket connections.
pub const WEBSOCKETS: &str = "stratix_websockets_open";
/// Change events handed to subscribers.
pub const EVENTS_DELIVERED: &str = "stratix_realtime_events_delivered_total";
/// Change events not delivered, by reason (`slow_consumer`, `read_failed`, `queue_full`).
pub const EVENTS_DROPPED: &str = "stratix_realtime_events_dropped_total";
/// Change batches waiting for the realtime dispatcher.
pub const DISPATCH_QUEUE: &str = "stratix_realtime_dispatch_queue_depth";
/// Users whose API request counts wait in memory for the next write (every second).
pub const USAGE_PENDING: &str = "stratix_usage_meter_pending_users";
/// Data access audits waiting in memory for the next write (every second).
pub const AUDITS_PENDING: &str = "stratix_audits_pending";
/// Webhook deliveries waiting to be sent (or retried), over every instance.
pub const WEBHOOKS_PENDING: &str = "stratix_webhook_deliveries_pending";
/// Data access audits dropped because their queue was full.
pub const AUDITS_DROPPED: &str = "stratix_audits_dropped_total";
/// Shops' API requests waiting in memory to be written to `usage_logs` (every second).
pub const USAGE_LOGS_PENDING: &str = "stratix_usage_logs_pending";
/// Shops' API requests not written to `usage_logs` because their queue was full.
pub const USAGE_LOGS_DROPPED: &str = "stratix_usage_logs_dropped_total";
/// Background job runs, by job and outcome (`ok`, `error`, `skipped`: another instance
/// held the job's lock).
pub const JOB_RUNS: &str = "stratix_job_runs_total";

/// Requests the throttle refused, by reason (`cost`: the bucket is spent, `max_cost`: one
/// operation over the maximum, `attempts`: sign-in limits).
pub const THROTTLED: &str = "stratix_throttled_requests_total";
/// Cost buckets held in memory (principals and sign-in limits).
pub const THROTTLE_BUCKETS: &str = "stratix_throttle_buckets";

/// Latency buckets (seconds): 1 ms to 10 s.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Statement-count buckets.
const STATEMENTS: &[f64] = &[0.0, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0, 34.0, 55.0, 100.0];

/// The most distinct operation names labelled; later ones count as `other`, so a client
/// inventing names cannot grow the metrics without bound.
const MAX_OPERATIONS: usize = 500;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process's recorder (once); `None` when another recorder was installed first.
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(GRAPHQL_DURATION.to_owned()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full(GRAPHQL_STATEMENTS.to_owned()),
                        STATEMENTS,
                    )
                })
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full(POOL_WAIT.to_owned()), SECONDS)
                });
            let recorder = match builder {
                Ok(builder) => builder.build_recorder(),
                Err(error) => {
                    tracing::warn!(%error, "metrics: cannot configure the recorder");
                    return None;
                }
            };
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    describe();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!("metrics: another recorder is installed; /metrics is empty");
                    None
                }
            }
        })
        .as_ref()
}

/// The metrics in Prometheus's text format.
pub fn render() -> String {
    install().map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(HTTP_REQUESTS, "HTTP requests, by route and status");
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL requests, by operation and outcome"
    );
    describe_histogram!(GRAPHQL_DURATION, Unit::Seconds, "GraphQL request latency");
    describe_histogram!(GRAPHQL_STATEMENTS, "SQL statements per GraphQL request");
    describe_counter!(PLAN_HITS, "Read requests answered by a compiled plan");
    describe_counter!(PLAN_MISSES, "Read requests answered by the executor");
    describe_gauge!(POOL_CONNECTIONS, "Database pool connections, by state");
    describe_gauge!(POOL_MAX, "The database pool's most connections");
    describe_counter!(
        POOL_WAITS,
        "Request transactions that waited for a pool connection"
    );
    describe_histogram!(
        POOL_WAIT,
        Unit::Seconds,
        "How long request transactions waited for a pool connection"
    );
    describe_gauge!(SUBSCRIPTIONS, "Open GraphQL subscriptions");
    describe_gauge!(WEBSOCKETS, "Open GraphQL WebSocket connections");
    describe_counter!(EVENTS_DELIVERED, "Change events handed to subscribers");
    describe_counter!(EVENTS_DROPPED, "Change events not delivered, by reason");
    describe_gauge!(
        DISPATCH_QUEUE,
        "Change batches waiting for the realtime dispatcher"
    );
    describe_gauge!(
        USAGE_PENDING,
        "Users whose API request counts wait to be written"
    );
    describe_gauge!(AUDITS_PENDING, "Data access audits waiting to be written");
    describe_counter!(
        AUDITS_DROPPED,
        "Data access audits dropped because their queue was full"
    );
    describe_gauge!(
        USAGE_LOGS_PENDING,
        "Shops' API requests waiting to be written to usage_logs"
    );
    describe_counter!(
        USAGE_LOGS_DROPPED,
        "Shops' API requests not logged because the usage log queue was full"
    );
    describe_gauge!(
        WEBHOOKS_PENDING,
        "Webhook deliveries waiting to be sent or retried"
    );
    describe_counter!(JOB_RUNS, "Background job runs, by job and outcome");
    describe_counter!(THROTTLED, "Requests the throttle refused, by reason");
    describe_gauge!(THROTTLE_BUCKETS, "Cost buckets held in memory");
}

/// Records the end of an HTTP request.
pub(super) fn request_ended(
    route: &str,
    status: StatusCode,
    record: &RequestRecord,
    elapsed: Duration,
) {
    metrics::counter!(HTTP_REQUESTS, "route" => route.to_owned(), "status" => status.as_str().to_owned())
        .increment(1);
    let Some(operation) = record.operation() else {
        return;
    };
    let operation = operation_label(operation);
    let outcome = record.outcome().unwrap_or(match status.as_u16() {
        200..=299 => "OK",
        401 => "UNAUTHENTICATED",
        429 => "THROTTLED",
        400..=499 => "BAD_USER_INPUT",
        _ => "INTERNAL",
    });
    metrics::counter!(GRAPHQL_REQUESTS, "operation" => operation.clone(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(GRAPHQL_DURATION, "operation" => operation.clone())
        .record(elapsed.as_secs_f64());
    #[expect(clippy::cast_precision_loss, reason = "statement counts are small")]
    metrics::histogram!(GRAPHQL_STATEMENTS, "operation" => operation)
        .record(record.statements() as f64);
}

/// `name` as a label: kept for the first [`MAX_OPERATIONS`] names seen, else `other`.
fn operation_label(name: &str) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.contains(name) {
        return name.to_owned();
    }
    if seen.len() < MAX_OPERATIONS && name.len() <= 100 {
        seen.insert(name.to_owned());
        return name.to_owned();
    }
    "other".to_owned()
}

/// Counts one request a compiled plan answered (`true`) or did not.
pub fn plan_lookup(hit: bool) {
    metrics::counter!(if hit { PLAN_HITS } else { PLAN_MISSES }).increment(1);
}

/// Counts a wait for a pool connection, and how long it took.
pub fn pool_waited(waited: Duration) {
    metrics::counter!(POOL_WAITS).increment(1);
    metrics::histogram!(POOL_WAIT).record(waited.as_secs_f64());
}

/// Counts change events delivered.
pub fn events_delivered(n: usize) {
    metrics::counter!(EVENTS_DELIVERED).increment(n as u64);
}

/// Counts change events not delivered, with why.
pub fn events_dropped(reason: &'static str, n: usize) {
    metrics::counter!(EVENTS_DROPPED, "reason" => reason).increment(n as u64);
}

/// Counts shops' API requests not logged because the usage log queue was full.
pub fn usage_logs_dropped(n: usize) {
    metrics::counter!(USAGE_LOGS_DROPPED).increment(n as u64);
}

/// Counts data access audits dropped.
pub fn audits_dropped(n: usize) {
    metrics::counter!(AUDITS_DROPPED).increment(n as u64);
}

/// Counts a request the throttle refused, with why.
pub fn throttled(reason: &'static str) {
    metrics::counter!(THROTTLED, "reason" => reason).increment(1);
}

/// Counts a background job's run.
pub fn job_run(job: &'static str, outcome: &'static str) {
    metrics::counter!(JOB_RUNS, "job" => job, "outcome" => outcome).increment(1);
}

/// Sets the gauges that describe the state of `state` (read at each scrape).
pub fn observe_state(state: &crate::AppState) {
    let (size, idle, max) = pool_sizes(&state.db);
    metrics::gauge!(POOL_CONNECTIONS, "state" => "in_use")
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!(POOL_CONNECTIONS, "state" => "idle").set(f64::from(idle));
    metrics::gauge!(POOL_MAX).set(f64::from(max));
    #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
    {
        metrics::gauge!(SUBSCRIPTIONS).set(state.realtime.subscriptions() as f64);
        metrics::gauge!(DISPATCH_QUEUE).set(state.realtime.queue_depth() as f64);
        metrics::gauge!(WEBSOCKETS).set(state.shutdown.websockets() as f64);
        metrics::gauge!(USAGE_PENDING).set(state.usage.pending() as f64);
        metrics::gauge!(AUDITS_PENDING).set(state.audits.pending() as f64);
        metrics::gauge!(USAGE_LOGS_PENDING).set(state.usage_logs.pending() as f64);
        metrics::gauge!(THROTTLE_BUCKETS).set(state.throttle.buckets() as f64);
    }
}

/// Sets the gauges read from the database: the webhook deliveries still pending (counted
/// on their partial index). A failed count leaves the gauge as it was.
pub async fn observe_database(state: &crate::AppState) {
    use sea_orm::ConnectionTrait as _;
    use sea_orm::sea_query::{Asterisk, Expr, ExprTrait as _, Query};
    let query = Query::select()
        .expr(Expr::col(Asterisk).count())
        .from("webhook_deliveries")
        .and_where(Expr::col("status").eq("pending"))
        .to_owned();
    match state.db.query_one(&query).await {
        Ok(Some(row)) => {
            if let Ok(pending) = row.try_get_by_index::<i64>(0) {
                #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
                metrics::gauge!(WEBHOOKS_PENDING).set(pending as f64);
            }
        }
        Ok(None) => {}
        Err(error) => tracing::warn!(%error, "metrics: counting pending webhook deliveries"),
    }
}

/// The pool's open connections, idle connections and maximum.
fn pool_sizes(db: &sea_orm::DatabaseConnection) -> (u32, u32, u32) {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                to_u32(pool.num_idle()),
                pool.options().get_max_connections(),
            )
        }
        sea_orm::DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                to_u32(pool.num_idle()),
                pool.options().get_max_connections(),
            )
        }
        _ => (0, 0, 0),
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
