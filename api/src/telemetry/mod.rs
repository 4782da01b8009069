//! Observability: request ids on every response, log line and error; text or JSON logs;
//! Prometheus metrics; OpenTelemetry traces ([`otel`]).
//!
//! [`layer`] wraps the router: it gives each request its id and span (continuing the
//! caller's trace when it sends `traceparent`), and records its metrics when it ends. The GraphQL handler tells the request's [`record`] which operation
//! ran, how it ended and how many statements it took.

pub mod metrics;
pub mod otel;
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

/// Installs the global log subscriber: `filter` in `RUST_LOG` syntax, to stderr; and, when
/// an OTLP endpoint is configured, the span exporter ([`otel`]). Keep what it returns and
/// call [`Tracing::shutdown`] at exit, so the last spans are sent.
pub fn init_logging(format: LogFormat, filter: &str) -> Tracing {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Text => logs.boxed(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
    };
    let provider = otel::provider();
    let spans = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("stratix"))
    });
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(spans)
        .with(filter)
        .try_init();
    Tracing { provider }
}

/// The span exporter, while traces are exported.
#[must_use = "call shutdown at exit, or the last spans are lost"]
pub struct Tracing {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Tracing {
    /// Sends the spans not yet exported (at most a few seconds), then stops exporting.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || otel::shutdown(&provider)).await;
        }
    }
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
        otel.name = %format_args!("{} {route}", request.method()),
        otel.kind = "server",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path(),
        operation = tracing::field::Empty,
        status = tracing::field::Empty,
    );
    continue_trace(&span, request.headers());
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
    span.record("status", status.as_u16());
    if let Some(operation) = record.operation() {
        span.record("operation", operation);
    }
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

/// Makes the request's span a child of the caller's, when the caller sends W3C trace
/// context (`traceparent`, `tracestate`): its trace then runs through Stratix.
fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use opentelemetry::propagation::TextMapPropagator as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    if !headers.contains_key("traceparent") {
        return;
    }
    let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let parent = propagator.extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(parent);
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
