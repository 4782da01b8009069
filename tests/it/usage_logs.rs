//! Shops' usage logs (`usage_logs`): one row per GraphQL request a shop makes, over HTTP
//! or a WebSocket, with its operation, cost and status, written off the request path once
//! the queue is flushed; a full queue drops and counts; nobody else's requests are logged;
//! a shop reads only its own.

use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{SHOPIFY_KEY, SHOPIFY_SECRET, TestApp};
use crate::common::process::Process;
use crate::common::server::{Client, Server};
use crate::common::{TestDb, fixtures, on_both_backends};

const PRODUCTS: &str = "query Products { products { nodes { id title } } }";
const LOGS: &str = "query($s: UUID!) { usageLogs(filter: {shopId: {eq: $s}}) { nodes { endpoint method statusCode status cost durationMs shopId } } }";

/// `shop`'s usage logs as `service_role` reads them, sorted by endpoint then status.
async fn logs_of(app: &TestApp, shop: Uuid) -> Vec<Value> {
    let reply = app.query(LOGS, json!({ "s": shop })).await;
    let mut logs = reply.data()["usageLogs"]["nodes"]
        .as_array()
        .unwrap()
        .clone();
    logs.sort_by_key(|log| format!("{}/{}", log["endpoint"], log["status"]));
    logs
}

/// How many usage log rows there are, over every shop.
async fn all_logs(t: &TestDb) -> i64 {
    let rows = t.query("SELECT COUNT(*) FROM usage_logs", vec![]).await;
    rows[0].try_get_by_index(0).unwrap()
}

fn actual_cost(reply: &Value) -> i64 {
    reply["extensions"]["cost"]["actualQueryCost"]
        .as_i64()
        .unwrap()
}

on_both_backends! {
    /// A shop's requests (a query, a refused mutation, a GET, a batch) each become one row
    /// with the operation, the method, the HTTP status, `OK` or the error's code and the
    /// actual cost the throttle reported, once the queue is flushed.
    async fn a_shops_requests_are_logged_with_their_operation_cost_and_status(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "logged.myshopify.com").await;
        for n in 0..3 {
            fixtures::product(&app.t.db, shop, &format!("p-{n}")).await;
        }
        let token = TestApp::shop_token("logged.myshopify.com");

        let products = app.graphql(Some(&token), PRODUCTS, json!({})).await;
        let refused = app
            .graphql(
                Some(&token),
                "mutation Install { shopInstall(input: {domain: \"x.myshopify.com\", accessToken: \"t\"}) { userErrors { code } } }",
                json!({}),
            )
            .await;
        let get = app
            .send(
                Request::get("/graphql?query=query%20Count%20%7B%20products%20%7B%20totalCount%20%7D%20%7D")
                    .header("authorization", format!("Bearer {token}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        let pending = app.usage_logs.pending();
        let written = app.usage_logs.flush(&app.t.db).await.unwrap();

        assert_eq!(products.data()["products"]["nodes"].as_array().unwrap().len(), 3);
        assert_eq!(refused.code(), "FORBIDDEN", "{}", refused.body);
        get.data();
        assert_eq!((pending, written, app.usage_logs.pending()), (3, 3, 0));
        let logs = logs_of(&app, shop).await;
        let summary: Vec<Value> = logs
            .iter()
            .map(|l| json!([l["endpoint"], l["method"], l["statusCode"], l["status"], l["cost"]]))
            .collect();
        assert_eq!(
            summary,
            [
                json!(["Count", "GET", 200, "OK", actual_cost(&get.body)]),
                json!(["Install", "POST", 200, "FORBIDDEN", actual_cost(&refused.body)]),
                json!(["Products", "POST", 200, "OK", actual_cost(&products.body)]),
            ]
        );
        assert!(actual_cost(&products.body) > 1, "{}", products.body);
        for log in &logs {
            assert_eq!(log["shopId"], json!(shop));
            assert!(log["durationMs"].as_i64().unwrap() >= 0);
        }
    }

    /// A request refused by the throttle is logged with its code and no cost.
    async fn a_throttled_request_is_logged_as_throttled(t) {
        let mut options = crate::common::options();
        options.throttle.maximum = 10.0;
        options.throttle.restore_rate = 0.001;
        let app = TestApp::with_options(t, options).await;
        let shop = fixtures::shop(&app.t.db, "busy.myshopify.com").await;
        let token = TestApp::shop_token("busy.myshopify.com");
        let costly = "query Costly { products(first: 250) { nodes { id contentRevisions(first: 250) { nodes { id } } } } }";

        let reply = app.graphql(Some(&token), costly, json!({})).await;
        app.usage_logs.flush(&app.t.db).await.unwrap();

        assert_eq!(reply.code(), "MAX_COST_EXCEEDED", "{}", reply.body);
        let logs = logs_of(&app, shop).await;
        assert_eq!(logs.len(), 1);
        assert_eq!(
            json!([logs[0]["endpoint"], logs[0]["status"], logs[0]["cost"]]),
            json!(["Costly", "MAX_COST_EXCEEDED", 0])
        );
    }

    /// With the queue full, requests still answer; the logs that did not fit are dropped
    /// and counted, in the queue and in `/metrics`.
    async fn a_full_usage_log_queue_drops_and_counts_without_failing_the_request(t) {
        let options = api::state::Options { usage_log_capacity: 2, ..crate::common::options() };
        let app = TestApp::with_options(t, options).await;
        let shop = fixtures::shop(&app.t.db, "full.myshopify.com").await;
        let token = TestApp::shop_token("full.myshopify.com");

        let mut replies = Vec::new();
        for _ in 0..5 {
            replies.push(app.graphql(Some(&token), PRODUCTS, json!({})).await);
        }
        let (pending, dropped) = (app.usage_logs.pending(), app.usage_logs.dropped());
        let (_, metrics) = app
            .send_raw(Request::get("/metrics").body(Body::empty()).unwrap())
            .await;
        app.usage_logs.flush(&app.t.db).await.unwrap();

        for reply in &replies {
            assert_eq!(reply.data()["products"]["nodes"], json!([]));
        }
        assert_eq!((pending, dropped), (2, 3));
        let counted: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix("stratix_usage_logs_dropped_total "))
            .unwrap_or_else(|| panic!("no drop counter in /metrics:\n{metrics}"))
            .trim()
            .parse()
            .unwrap();
        // The counter is the process's: other tests' drops may be in it too.
        assert!(counted >= 3.0, "{counted}");
        assert_eq!(logs_of(&app, shop).await.len(), 2);
    }

    /// `service_role`, users, anonymous callers and storefronts are not logged.
    async fn requests_of_other_principals_write_no_usage_logs(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "quiet.myshopify.com").await;
        let user = fixtures::user(&app.t.db, "someone@example.com").await;
        let ingest_key: String = app
            .t
            .query("SELECT ingest_key FROM shops WHERE id = $1", vec![shop.into()])
            .await[0]
            .try_get_by_index(0)
            .unwrap();

        app.query(PRODUCTS, json!({})).await.data();
        app.graphql(Some(&TestApp::token("authenticated", &user.to_string())), PRODUCTS, json!({})).await.data();
        app.graphql(None, "query Anonymous { __typename }", json!({})).await.data();
        let storefront = app
            .send(
                Request::post("/graphql")
                    .header("content-type", "application/json")
                    .header("x-stratix-ingest-key", ingest_key)
                    .body(Body::from(json!({ "query": "query Storefront { __typename }" }).to_string()))
                    .unwrap(),
            )
            .await;
        let pending = app.usage_logs.pending();
        let written = app.usage_logs.flush(&app.t.db).await.unwrap();

        storefront.data();
        assert_eq!((pending, written), (0, 0));
        assert_eq!(all_logs(&app.t).await, 0);
    }

    /// Shop B reads none of shop A's usage logs, by list or by id; A reads its own.
    async fn a_shop_reads_only_its_own_usage_logs(t) {
        let app = TestApp::new(t).await;
        let a = fixtures::shop(&app.t.db, "a.myshopify.com").await;
        let b = fixtures::shop(&app.t.db, "b.myshopify.com").await;
        let (token_a, token_b) = (TestApp::shop_token("a.myshopify.com"), TestApp::shop_token("b.myshopify.com"));
        app.graphql(Some(&token_a), PRODUCTS, json!({})).await.data();
        app.graphql(Some(&token_a), PRODUCTS, json!({})).await.data();
        app.usage_logs.flush(&app.t.db).await.unwrap();
        let of_a = logs_of(&app, a).await;
        let own = "query($s: UUID!) { usageLogs(filter: {shopId: {eq: $s}}) { totalCount nodes { id } } }";
        let node = "query($id: ID!) { node(id: $id) { id } }";

        let b_reads_a = app.graphql(Some(&token_b), own, json!({ "s": a })).await;
        let b_reads_all = app.graphql(Some(&token_b), "{ usageLogs { totalCount } }", json!({})).await;
        let a_reads_a = app.graphql(Some(&token_a), own, json!({ "s": a })).await;
        let a_log = a_reads_a.data()["usageLogs"]["nodes"][0]["id"].clone();
        let b_reads_node = app.graphql(Some(&token_b), node, json!({ "id": a_log })).await;

        assert_eq!(of_a.len(), 2);
        assert_eq!(b_reads_a.data()["usageLogs"]["totalCount"], 0);
        assert_eq!(b_reads_all.data()["usageLogs"]["totalCount"], 0);
        assert_eq!(a_reads_a.data()["usageLogs"]["totalCount"], 2);
        assert_eq!(b_reads_node.data()["node"], Value::Null);
        assert!(logs_of(&app, b).await.is_empty());
    }

    /// A shop's query over a WebSocket is logged (method `WS`) with its cost, and so is a
    /// subscription when it starts.
    async fn a_shops_websocket_operations_are_logged(t) {
        let t = t.migrated().await;
        let shop = fixtures::shop(&t.db, "socket.myshopify.com").await;
        fixtures::product(&t.db, shop, "p-1").await;
        let server = Server::start(t.db.clone()).await;
        let mut client = Client::connect(server.addr, false).await;
        client.init(&TestApp::shop_token("socket.myshopify.com")).await;

        client.subscribe("q", PRODUCTS, json!({})).await;
        let answer = client.answer("q", Duration::from_secs(10)).await;
        client
            .subscribe("s", "subscription Changes { rowChanged(tables: [PRODUCTS]) { op } }", json!({}))
            .await;
        server.subscribed(1).await;
        let written = server.usage_logs.flush(&t.db).await.unwrap();

        assert_eq!(answer["data"]["products"]["nodes"].as_array().unwrap().len(), 1, "{answer}");
        assert_eq!(written, 2);
        let rows = t
            .query(
                "SELECT endpoint, method, status, cost FROM usage_logs WHERE shop_id = $1 ORDER BY endpoint",
                vec![shop.into()],
            )
            .await;
        let logged: Vec<(String, String, String, i32)> = rows
            .iter()
            .map(|r| {
                (
                    r.try_get_by_index(0).unwrap(),
                    r.try_get_by_index(1).unwrap(),
                    r.try_get_by_index(2).unwrap(),
                    r.try_get_by_index(3).unwrap(),
                )
            })
            .collect();
        let query_cost = i32::try_from(actual_cost(&answer)).unwrap();
        assert_eq!(logged[0].0, "Changes");
        assert_eq!((logged[0].1.as_str(), logged[0].2.as_str()), ("WS", "OK"));
        assert_eq!(
            logged[1],
            ("Products".to_owned(), "WS".to_owned(), "OK".to_owned(), query_cost)
        );
    }

    /// `stratix serve` writes the usage logs still queued when it is told to stop: a
    /// request answered just before SIGTERM is in `usage_logs` once the process exits.
    async fn usage_logs_queued_at_shutdown_are_written_before_exit(t) {
        let t = t.migrated().await;
        let shop = fixtures::shop(&t.db, "last.myshopify.com").await;
        let secret = std::str::from_utf8(SHOPIFY_SECRET).unwrap();
        let env = [("STRATIX_JOBS", "false"), ("SHOPIFY_API_KEY", SHOPIFY_KEY), ("SHOPIFY_API_SECRET", secret)];
        let mut server = Process::serve(&t, &env).await;
        let token = TestApp::shop_token("last.myshopify.com");

        let answered = reqwest::Client::new()
            .post(format!("http://{}/graphql", server.addr))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(json!({ "query": "query Last { products { totalCount } }" }).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let answered: Value = serde_json::from_str(&answered).unwrap();
        server.terminate();
        let code = server.exit_code(Duration::from_secs(40)).await;

        assert_eq!(answered["data"]["products"]["totalCount"], 0, "{answered}");
        assert_eq!(code, Some(0), "{}", server.logs().join("\n"));
        let rows = t
            .query("SELECT endpoint FROM usage_logs WHERE shop_id = $1", vec![shop.into()])
            .await;
        let endpoints: Vec<String> = rows.iter().map(|r| r.try_get_by_index(0).unwrap()).collect();
        assert_eq!(endpoints, ["Last"]);
    }
}
