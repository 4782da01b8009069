//! OpenTelemetry traces: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans go to that collector over OTLP/HTTP
//! (protobuf): one per HTTP request, and below it one per SQL statement the request runs
//! (a loader's batch is one statement). The standard `OTEL_*` variables apply
//! (`OTEL_SERVICE_NAME`, default `stratix`; `OTEL_EXPORTER_OTLP_HEADERS`;
//! `OTEL_BSP_SCHEDULE_DELAY`, ...).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The variables that switch tracing on.
const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
];

/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported: per-statement spans are only made then, so they cost
/// nothing otherwise.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The exporting tracer provider when an endpoint is configured (`None` otherwise, or when
/// the exporter cannot be built, which is logged). Needs a Tokio runtime: exports run on it.
pub fn provider() -> Option<SdkTracerProvider> {
    if !ENDPOINT_VARS
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    {
        return None;
    }
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    let client = match reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            eprintln!("OpenTelemetry: cannot build the HTTP client: {error}");
            return None;
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(Exporter { client, runtime })
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!("OpenTelemetry: traces are not exported: {error}");
            return None;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("stratix");
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    ENABLED.store(true, Ordering::Relaxed);
    Some(provider)
}

/// Sends the spans still buffered and stops exporting (at exit). Blocks: call it where a
/// blocking call is allowed.
pub fn shutdown(provider: &SdkTracerProvider) {
    if let Err(error) = provider.shutdown() {
        eprintln!("OpenTelemetry: the last spans were not all exported: {error}");
    }
}

/// The exporter's HTTP client: the service's reqwest, run on the service's runtime. The
/// batch processor exports from a thread of its own, outside the runtime, so each request
/// is spawned onto it and awaited from there.
#[derive(Debug)]
struct Exporter {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for Exporter {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let mut answer = Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                *headers = response.headers().clone();
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}
