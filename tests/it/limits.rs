//! Limits before work: a request over a limit is refused before it is parsed, validated or
//! run, with `BAD_USER_INPUT` naming the limit (or 413 for a body), in milliseconds.

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};

use crate::common::app::{Reply, TestApp};
use crate::common::on_both_backends;

/// POSTs `query` with `variables` as `service_role`; asserts it was refused, quickly, for
/// `limit`.
async fn refused_for(app: &TestApp, limit: &str, query: &str, variables: Value) -> Reply {
    let started = Instant::now();
    let reply = app.query(query, variables).await;
    let took = started.elapsed();
    assert_eq!(reply.code(), "BAD_USER_INPUT", "{limit}: {}", reply.body);
    assert_eq!(reply.limit(), limit, "{}", reply.body);
    assert!(reply.body["data"].is_null(), "{}", reply.body);
    assert!(took < Duration::from_millis(500), "{limit}: {took:?}");
    reply
}

on_both_backends! {
    async fn a_body_over_the_limit_is_413_before_it_is_read(t) {
        let mut options = api::state::Options::default();
        options.limits.max_body_bytes = 4096;
        let app = TestApp::with_options(t, options).await;
        let pad = "x".repeat(5000);

        let declared = app
            .query("{ __typename }", json!({ "pad": pad }))
            .await;
        // Without a Content-Length: the body is read up to the limit and no further.
        let chunks = futures_util::stream::iter(
            (0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])),
        );
        let streamed = app
            .send(
                Request::post("/graphql")
                    .header("content-type", "application/json")
                    .body(Body::from_stream(chunks))
                    .unwrap(),
            )
            .await;
        let small = app.query("{ __typename }", json!({})).await;

        assert_eq!(declared.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(declared.limit(), "maxBodyBytes", "{}", declared.body);
        assert_eq!(streamed.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(small.data()["__typename"], "Query");
    }

    async fn documents_over_a_limit_are_refused_naming_it(t) {
        let app = TestApp::new(t).await;
        let limits = api::graphql::Limits::default();

        let comment = format!("# {}\n{{ __typename }}", "x".repeat(limits.max_document_bytes));
        refused_for(&app, "maxDocumentBytes", &comment, json!({})).await;
        let tokens = format!("{{ {} }}", "a ".repeat(limits.max_tokens));
        refused_for(&app, "maxTokens", &tokens, json!({})).await;
        let brackets = format!(
            "{{ shops(first: {}1{}) {{ totalCount }} }}",
            "[".repeat(limits.max_nesting),
            "]".repeat(limits.max_nesting)
        );
        refused_for(&app, "maxNesting", &brackets, json!({})).await;
        let directives = format!(
            "{{ __typename {} }}",
            "@include(if: true) ".repeat(limits.max_directives + 1)
        );
        refused_for(&app, "maxDirectives", &directives, json!({})).await;
        let on_a_spread = format!(
            "{{ ...F {} }} fragment F on Query {{ __typename }}",
            "@skip(if: false) ".repeat(limits.max_directives + 1)
        );
        refused_for(&app, "maxDirectives", &on_a_spread, json!({})).await;
        let repeats = format!("{{ {} }}", "__typename ".repeat(limits.max_repeats + 1));
        refused_for(&app, "maxRepeats", &repeats, json!({})).await;
        let fragments: String = (0..=limits.max_fragments)
            .map(|i| format!("fragment F{i} on Query {{ __typename }}\n"))
            .collect();
        let many = format!("{{ ...F0 }}\n{fragments}");
        refused_for(&app, "maxFragments", &many, json!({})).await;
        let chain: String = (0..=limits.max_fragment_depth)
            .map(|i| format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1))
            .collect();
        let nested = format!(
            "{{ ...F0 }}\n{chain}fragment F{} on Query {{ __typename }}",
            limits.max_fragment_depth + 1
        );
        refused_for(&app, "maxFragmentDepth", &nested, json!({})).await;
        // A cycle: the parser's own recursion guard refuses it first.
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert_eq!(app.query(cycle, json!({})).await.code(), "BAD_USER_INPUT");
        let levels = limits.max_input_depth / 2 + 1;
        let filter = format!(
            "{}{{id: {{isNull: true}}}}{}",
            "{and: [".repeat(levels),
            "]}".repeat(levels)
        );
        let deep_input = format!("{{ shops(filter: {filter}) {{ totalCount }} }}");
        refused_for(&app, "maxInputDepth", &deep_input, json!({})).await;
    }

    async fn variables_over_a_limit_are_refused_naming_it(t) {
        let app = TestApp::new(t).await;
        let limits = api::graphql::Limits::default();
        // Refused before validation would find `$v` undeclared.
        let query = "{ __typename }";

        let big = json!({ "v": "x".repeat(limits.max_variables_bytes) });
        refused_for(&app, "maxVariablesBytes", query, big).await;
        let mut deep = json!(1);
        for _ in 0..limits.max_nesting {
            deep = json!([deep]);
        }
        refused_for(&app, "maxNesting", query, json!({ "v": deep })).await;
        let fine = app.query(query, json!({ "v": [[1]] })).await;
        assert_eq!(fine.data()["__typename"], "Query");
    }

    async fn a_batch_over_the_limit_names_it(t) {
        let app = TestApp::new(t).await;
        let operations: Vec<Value> = (0..=api::graphql::Limits::default().max_batch)
            .map(|_| json!({ "query": "{ __typename }" }))
            .collect();
        let reply = app
            .send(
                Request::post("/graphql")
                    .header("content-type", "application/json")
                    .header("authorization", format!("Bearer {}", TestApp::service()))
                    .body(Body::from(Value::from(operations).to_string()))
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.limit(), "maxBatch", "{}", reply.body);
    }
}
