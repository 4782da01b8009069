//! Persisted queries: Apollo's automatic protocol feeding the compiled-plan cache, and the
//! allow-list mode.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::on_both_backends;
use crate::common::process::Process;

const READ: &str = "query Shops { shops(first: 5) { totalCount nodes { domain } } }";

/// POSTs `body` as `service_role`.
async fn post(app: &TestApp, body: Value) -> Value {
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", TestApp::service()))
        .body(Body::from(body.to_string()))
        .unwrap();
    serde_json::from_str(&app.send_raw(request).await.1).unwrap()
}

fn persisted(hash: &str) -> Value {
    json!({ "persistedQuery": { "version": 1, "sha256Hash": hash } })
}

on_both_backends! {
    async fn a_persisted_read_is_found_by_hash_after_one_send_and_answered_by_a_plan(t) {
        let app = TestApp::new(t).await;
        crate::common::fixtures::shop(&app.t.db, "apq.myshopify.com").await;
        let hash = api::persisted::sha256(READ);

        let unknown = post(&app, json!({ "extensions": persisted(&hash) })).await;
        let with_text = post(&app, json!({ "query": READ, "extensions": persisted(&hash) })).await;
        let hits = app.plans.hits();
        let by_hash = post(&app, json!({ "extensions": persisted(&hash) })).await;
        let mismatch = post(&app, json!({ "query": "{ shops { totalCount } }", "extensions": persisted(&hash) })).await;
        let get = app
            .send_raw(
                Request::get(format!(
                    "/graphql?extensions={}",
                    urlencode(&persisted(&hash).to_string())
                ))
                .header("authorization", format!("Bearer {}", TestApp::service()))
                .body(Body::empty())
                .unwrap(),
            )
            .await;

        assert_eq!(unknown["errors"][0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");
        assert_eq!(unknown["errors"][0]["message"], "PersistedQueryNotFound");
        assert_eq!(with_text["data"]["shops"]["totalCount"], 1, "{with_text}");
        assert_eq!(by_hash["data"], with_text["data"]);
        // Both reads by hash (POST and GET) came from the plan cache, unparsed.
        assert_eq!(app.plans.hits(), hits + 2, "the plan cache did not answer");
        assert_eq!(mismatch["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
        let get: Value = serde_json::from_str(&get.1).unwrap();
        assert_eq!(get["data"], with_text["data"], "{get}");
    }

    async fn allow_list_mode_runs_only_the_listed_documents(t) {
        let t = t.migrated().await;
        let file = std::env::temp_dir().join(format!("stratix-persisted-{}.json", uuid::Uuid::new_v4()));
        let manifest = json!({
            "format": "apollo-persisted-query-manifest",
            "version": 1,
            "operations": [{ "id": api::persisted::sha256(READ), "name": "Shops", "type": "query", "body": READ }],
        });
        std::fs::write(&file, manifest.to_string()).unwrap();
        let mut server = Process::serve(
            &t,
            &[
                ("STRATIX_PERSISTED_QUERIES", file.to_str().unwrap()),
                ("STRATIX_PERSISTED_ONLY", "true"),
                ("STRATIX_JOBS", "false"),
            ],
        )
        .await;
        let client = reqwest::Client::new();
        let send = |body: Value| {
            let request = client
                .post(format!("http://{}/graphql", server.addr))
                .bearer_auth(TestApp::service())
                .header("content-type", "application/json")
                .body(body.to_string());
            async move { serde_json::from_str::<Value>(&request.send().await.unwrap().text().await.unwrap()).unwrap() }
        };

        let by_hash = send(json!({ "extensions": persisted(&api::persisted::sha256(READ)) })).await;
        let by_text = send(json!({ "query": READ })).await;
        let other = send(json!({ "query": "{ users { totalCount } }" })).await;

        server.terminate();
        assert_eq!(server.exit_code(std::time::Duration::from_secs(40)).await, Some(0));
        std::fs::remove_file(&file).unwrap();
        assert_eq!(by_hash["data"]["shops"]["totalCount"], 0, "{by_hash}");
        assert_eq!(by_text["data"], by_hash["data"]);
        assert_eq!(other["errors"][0]["extensions"]["code"], "FORBIDDEN", "{other}");
        assert!(server.logs().iter().any(|l| l.contains("persisted queries: only the 1 loaded")));
    }
}

/// `text` percent-encoded for a query string.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
