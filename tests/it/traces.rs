//! OpenTelemetry: `stratix serve` with `OTEL_EXPORTER_OTLP_ENDPOINT` sends its spans to a
//! real OTLP/HTTP receiver (protobuf on `POST /v1/traces`): one span per request, a child
//! span per SQL statement.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::json;

use crate::common::app::TestApp;
use crate::common::process::Process;
use crate::common::{fixtures, on_both_backends};

/// An OTLP/HTTP receiver on a free port: the spans it got, and a signal at each export.
struct Receiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<Span>>>,
    exported: tokio::sync::watch::Receiver<usize>,
}

impl Receiver {
    async fn start() -> Self {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let (tx, exported) = tokio::sync::watch::channel(0);
        let sink = spans.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            post(move |body: Bytes| async move {
                let request = ExportTraceServiceRequest::decode(body).unwrap();
                let mut spans = sink.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        spans.extend(scope.spans);
                    }
                }
                tx.send_modify(|n| *n += 1);
                // An empty ExportTraceServiceResponse.
                (
                    [("content-type", "application/x-protobuf")],
                    Vec::<u8>::new(),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            endpoint,
            spans,
            exported,
        }
    }

    /// Waits (at most 15 s) until a span satisfying `found` has arrived; all spans so far.
    async fn until(&mut self, found: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let spans = self.spans.clone();
        tokio::time::timeout(
            Duration::from_secs(15),
            self.exported.wait_for(|_| found(&spans.lock().unwrap())),
        )
        .await
        .unwrap_or_else(|_| panic!("no such span arrived"))
        .unwrap();
        self.spans.lock().unwrap().clone()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|value| match value {
            Any::StringValue(s) => s.clone(),
            Any::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_request(span: &Span, id: &str) -> bool {
    span.name == "POST /graphql" && attribute(span, "request_id").as_deref() == Some(id)
}

on_both_backends! {
    async fn requests_and_their_sql_statements_are_exported_as_otlp_spans(t) {
        let t = t.migrated().await;
        let user = fixtures::user(&t.db, "traced@example.com").await;
        fixtures::row(&t.db, "projects", vec![("name", "p".into()), ("user_id", user.into())]).await;
        let token = TestApp::token("authenticated", &user.to_string());
        let mut receiver = Receiver::start().await;
        let mut server = Process::serve(
            &t,
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", &receiver.endpoint),
                ("OTEL_BSP_SCHEDULE_DELAY", "100"),
                ("STRATIX_JOBS", "false"),
            ],
        )
        .await;

        let query = json!({ "query": "query Projects { projects { totalCount nodes { name } } }" });
        let answer = reqwest::Client::new()
            .post(format!("http://{}/graphql", server.addr))
            .bearer_auth(&token)
            .header("x-request-id", "traced-request")
            .header("content-type", "application/json")
            .body(query.to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        // A caller in a trace of its own: the request continues it.
        let continued = reqwest::Client::new()
            .post(format!("http://{}/graphql", server.addr))
            .bearer_auth(&token)
            .header("x-request-id", "continued-request")
            .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .header("content-type", "application/json")
            .body(query.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(continued.status(), 200);
        let spans = receiver
            .until(|spans| {
                spans.iter().any(|s| is_request(s, "traced-request"))
                    && spans.iter().any(|s| is_request(s, "continued-request"))
            })
            .await;
        server.terminate();
        let code = server.exit_code(Duration::from_secs(40)).await;

        assert_eq!(answer["data"]["projects"]["totalCount"], 1, "{answer}");
        let request = spans.iter().find(|s| is_request(s, "traced-request")).unwrap();
        assert_eq!(request.kind, SpanKind::Server as i32);
        assert!(request.parent_span_id.is_empty(), "a request span is a root");
        let child = spans.iter().find(|s| is_request(s, "continued-request")).unwrap();
        assert_eq!(hex(&child.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&child.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(attribute(request, "operation").as_deref(), Some("Projects"));
        assert_eq!(attribute(request, "status").as_deref(), Some("200"));
        let statements: Vec<&Span> = spans
            .iter()
            .filter(|s| s.parent_span_id == request.span_id)
            .collect();
        assert!(!statements.is_empty(), "no SQL spans below the request: {spans:#?}");
        for statement in &statements {
            assert_eq!(statement.trace_id, request.trace_id);
            assert_eq!(statement.kind, SpanKind::Client as i32);
            let sql = attribute(statement, "db.statement").unwrap_or_default();
            assert!(!sql.is_empty(), "{statement:?}");
            assert!(statement.start_time_unix_nano >= request.start_time_unix_nano);
            assert!(statement.end_time_unix_nano <= request.end_time_unix_nano);
        }
        assert!(
            statements.iter().any(|s| attribute(s, "db.statement").unwrap().contains("projects")),
            "{statements:#?}"
        );
        assert_eq!(code, Some(0), "{}", server.logs().join("\n"));
        assert!(server.logs().iter().any(|l| l.contains("traces to OTLP")), "{:?}", server.logs());
    }
}
