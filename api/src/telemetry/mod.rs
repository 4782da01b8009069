//! Observability: request ids on every response, log line and error; text or JSON logs;
//! Prometheus metrics.
//!
//! [`layer`] wraps the router: it gives each request its id and span, and records its
//! metrics when it ends. The GraphQL handler tells the request's [`record`] which operation
//! ran, how it ended and how many statements it took.

pub mod metrics;
pub mod record;

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;

pub use record::RequestRecord;

/// The header a request id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the request's span fields (`request_id`, ...).
    Json,
}

/// Installs the global log subscriber: `filter` in `RUST_LOG` syntax, to stderr.
pub fn init_logging(format: LogFormat, filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// What is logged unless `RUST_LOG` says otherwise.
pub const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,sea_orm_migration=warn";

/// Wraps `router` with request ids, the request span and request metrics.
pub fn layer(router: Router) -> Router {
    metrics::install();
    router.layer(axum::middleware::from_fn(observe))
}

async fn observe(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| acceptable_id(value))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let record = std::sync::Arc::new(RequestRecord::new(id.clone()));
    let started = Instant::now();
    let mut response = record::scope(record.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status();
    metrics::request_ended(&route, status, &record, elapsed);
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            operation = record.operation().unwrap_or_default(),
            "request finished"
        );
    });
    response
}

/// An incoming id is kept when it is short printable ASCII (it goes into headers and logs).
fn acceptable_id(value: &str) -> bool {
    !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::acceptable_id;

    #[test]
    fn request_ids_from_clients_must_be_short_printable_ascii() {
        assert!(acceptable_id("abc-123_X"));
        assert!(!acceptable_id(""));
        assert!(!acceptable_id("has space"));
        assert!(!acceptable_id(&"x".repeat(129)));
        assert!(!acceptable_id("é"));
    }
}
