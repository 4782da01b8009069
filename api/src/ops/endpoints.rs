//! The operator's endpoints beside `/health`: `GET /ready` (readiness) and `GET /metrics`
//! (Prometheus). Neither shows tenant data.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use migration::{Migrator, MigratorTrait};
use serde_json::json;

use crate::db::backend_name;
use crate::state::AppState;
use crate::telemetry::metrics;

/// How long `/ready` waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// `/ready`, and `/metrics` unless it is served on an address of its own.
pub fn routes(state: AppState, with_metrics: bool) -> Router {
    let router = Router::new().route("/ready", get(ready));
    let router = if with_metrics {
        router.route("/metrics", get(prometheus))
    } else {
        router
    };
    router.with_state(state)
}

/// `/metrics` alone, for `STRATIX_METRICS_LISTEN`.
pub fn metrics_routes(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(prometheus))
        .with_state(state)
}

/// Why the instance is not ready, or `None` when it is.
pub async fn not_ready(state: &AppState) -> Option<String> {
    if state.shutdown.has_begun() {
        return Some("shutting down".to_owned());
    }
    let checks = async {
        if let Err(error) = state.db.ping().await {
            tracing::warn!(%error, "readiness: the database does not answer");
            return Some("the database does not answer".to_owned());
        }
        match Migrator::get_pending_migrations(&state.db).await {
            Ok(pending) if pending.is_empty() => {}
            Ok(pending) => {
                return Some(format!(
                    "{} migrations are pending: run `stratix migrate up`",
                    pending.len()
                ));
            }
            Err(error) => {
                tracing::warn!(%error, "readiness: cannot read the migrations");
                return Some("cannot read the applied migrations".to_owned());
            }
        }
        if !state.realtime.is_listening() {
            return Some("the LISTEN connection for subscriptions is not up".to_owned());
        }
        None
    };
    tokio::time::timeout(READY_TIMEOUT, checks)
        .await
        .unwrap_or_else(|_| {
            Some(format!(
                "the database did not answer within {}s",
                READY_TIMEOUT.as_secs()
            ))
        })
}

/// `GET /ready`: 200 when the database answers, its migrations are current and (on
/// PostgreSQL) the change feed listens; else 503 with the reason.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let database = backend_name(&state.db);
    match not_ready(&state).await {
        None => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "database": database })),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "database": database, "reason": reason })),
        ),
    }
}

/// `GET /metrics`: the Prometheus text format.
async fn prometheus(State(state): State<AppState>) -> Response {
    metrics::observe_state(&state);
    metrics::observe_database(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        metrics::render(),
    )
        .into_response()
}
