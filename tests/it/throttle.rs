//! Cost throttling as Shopify does it: `extensions.cost` on every response, a leaky bucket
//! per principal (refusing with `THROTTLED` before any SQL, or `MAX_COST_EXCEEDED`), shared
//! by HTTP and WebSocket, sized by plan for shops; 429 on the webhooks; sign-in limits per
//! address and per email. Time is a manual clock: no test sleeps for a bucket to refill.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use api::throttle::Clock;
use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::fixtures;
use crate::common::on_both_backends;
use crate::common::server::{Client, Server};

/// Options with a bucket of `maximum` points restoring `rate` per second, on `clock`.
fn options(clock: &Clock, maximum: f64, rate: f64) -> api::state::Options {
    let mut options = api::state::Options::default();
    options.throttle.maximum = maximum;
    options.throttle.restore_rate = rate;
    options.throttle.clock = clock.clone();
    options
}

fn user() -> String {
    TestApp::token("authenticated", &Uuid::new_v4().to_string())
}

/// Costs 10 (a mutation), whatever it does: this one is refused without writing.
const SPEND_10: &str = r#"mutation { apiKeyRevoke(input: {id: "nope"}) { userErrors { code } } }"#;

/// Requested 2 + 5, actual 2 when the caller sees no product.
const PRODUCTS_5: &str = "{ products(first: 5) { nodes { id title } } }";

fn available(reply: &Value) -> u64 {
    reply["extensions"]["cost"]["throttleStatus"]["currentlyAvailable"]
        .as_u64()
        .unwrap_or_else(|| panic!("no currentlyAvailable: {reply}"))
}

/// Sends `query` as `token`, counting every SQL statement run for it.
async fn counted(app: &TestApp, token: Option<&str>, query: &str) -> (Reply, usize) {
    let counter = Arc::new(AtomicUsize::new(0));
    let reply =
        api::db::count_statements(counter.clone(), app.graphql(token, query, json!({}))).await;
    (reply, counter.load(Ordering::Relaxed))
}

on_both_backends! {
    async fn every_response_reports_its_cost_in_shopifys_shape(t) {
        let clock = Clock::manual();
        let app = TestApp::with_options(t, options(&clock, 1000.0, 50.0)).await;
        let token = user();
        // Three times: the executor answers first, then the compiled plan; alike.
        for (i, left) in [998, 996, 994].into_iter().enumerate() {
            let reply = app.graphql(Some(&token), PRODUCTS_5, json!({})).await;
            reply.data();
            assert_eq!(
                reply.body["extensions"]["cost"],
                json!({
                    "requestedQueryCost": 7,
                    "actualQueryCost": 2,
                    "throttleStatus": {
                        "maximumAvailable": 1000.0,
                        "currentlyAvailable": left,
                        "restoreRate": 50.0,
                    },
                }),
                "request {i}: {}",
                reply.body
            );
        }
        assert!(app.plans.hits() > 0, "the plan path was not taken");
        // The service is not throttled: its cost, no bucket.
        let service = app.query(PRODUCTS_5, json!({})).await;
        assert_eq!(
            service.body["extensions"]["cost"],
            json!({ "requestedQueryCost": 7, "actualQueryCost": 2 })
        );
        // A mutation costs 10, requested and actual.
        let spent = app.graphql(Some(&token), SPEND_10, json!({})).await;
        assert_eq!(spent.body["extensions"]["cost"]["requestedQueryCost"], 10, "{}", spent.body);
        assert_eq!(spent.body["extensions"]["cost"]["actualQueryCost"], 10);
        assert_eq!(available(&spent.body), 984);
    }

    async fn the_bucket_drains_refuses_before_any_sql_and_refills(t) {
        let clock = Clock::manual();
        let app = TestApp::with_options(t, options(&clock, 100.0, 10.0)).await;
        let token = user();
        for left in (0..10).rev() {
            let reply = app.graphql(Some(&token), SPEND_10, json!({})).await;
            assert_eq!(available(&reply.body), left * 10, "{}", reply.body);
        }
        let (refused, statements) = counted(&app, Some(&token), SPEND_10).await;
        assert_eq!(refused.code(), "THROTTLED", "{}", refused.body);
        assert_eq!(statements, 0, "a throttled request ran SQL");
        assert_eq!(refused.body["errors"][0]["extensions"]["retryAfter"], 1.0);
        assert_eq!(refused.headers["retry-after"], "1");
        assert!(refused.body["data"].is_null());
        assert_eq!(
            refused.body["extensions"]["cost"],
            json!({
                "requestedQueryCost": 10,
                "actualQueryCost": null,
                "throttleStatus": { "maximumAvailable": 100.0, "currentlyAvailable": 0, "restoreRate": 10.0 },
            })
        );
        // Half the wait: still short, by half a second.
        clock.advance(Duration::from_millis(500));
        let (early, _) = counted(&app, Some(&token), SPEND_10).await;
        assert_eq!(early.code(), "THROTTLED");
        assert_eq!(early.body["errors"][0]["extensions"]["retryAfter"], 0.5);
        // Another principal is not affected meanwhile.
        let other = app.graphql(Some(&user()), SPEND_10, json!({})).await;
        assert_eq!(available(&other.body), 90, "{}", other.body);
        clock.advance(Duration::from_millis(500));
        let (again, statements) = counted(&app, Some(&token), SPEND_10).await;
        assert_eq!(available(&again.body), 0, "{}", again.body);
        assert!(statements > 0, "the counter counts what runs");
        // Idle long enough, the bucket is full again.
        clock.advance(Duration::from_secs(60));
        let reply = app.graphql(Some(&token), PRODUCTS_5, json!({})).await;
        assert_eq!(available(&reply.body), 98, "{}", reply.body);
        // /metrics counts the refusals.
        let (_, metrics) = app.send_raw(Request::get("/metrics").body(Body::empty()).unwrap()).await;
        assert!(metrics.contains("stratix_throttled_requests_total{reason=\"cost\"}"), "{metrics}");
    }

    async fn one_query_over_the_maximum_is_max_cost_exceeded(t) {
        let clock = Clock::manual();
        let app = TestApp::with_options(t, options(&clock, 100.0, 10.0)).await;
        let token = user();
        let (reply, statements) = counted(&app, Some(&token), "{ products(first: 99) { nodes { id } } }").await;
        assert_eq!(reply.code(), "MAX_COST_EXCEEDED", "{}", reply.body);
        assert_eq!(statements, 0);
        let extensions = &reply.body["errors"][0]["extensions"];
        assert_eq!((extensions["cost"].as_u64(), extensions["maxCost"].as_u64()), (Some(101), Some(100)));
        assert_eq!(reply.body["extensions"]["cost"]["requestedQueryCost"], 101);
        // Nothing was taken.
        let ok = app.graphql(Some(&token), PRODUCTS_5, json!({})).await;
        assert_eq!(available(&ok.body), 98, "{}", ok.body);
        // A batch whose operations fit one by one, but not together, is throttled.
        let batch = json!([{ "query": "{ products(first: 60) { nodes { id } } }" }, { "query": "{ products(first: 60) { nodes { id } } }" }]);
        let request = Request::post("/graphql")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(batch.to_string()))
            .unwrap();
        let refused = app.send(request).await;
        assert_eq!(refused.code(), "MAX_COST_EXCEEDED", "{}", refused.body);
    }

    async fn a_shops_bucket_is_sized_by_its_plan(t) {
        let clock = Clock::manual();
        let app = TestApp::with_options(t, options(&clock, 100.0, 10.0)).await;
        fixtures::shop(&app.t.db, "starter.myshopify.com").await;
        let plus = fixtures::shop(&app.t.db, "plus.myshopify.com").await;
        app.t.execute("UPDATE shops SET plan = 'plus' WHERE id = $1", vec![plus.into()]).await.unwrap();
        for (domain, maximum, rate) in [("starter", 100.0, 10.0), ("plus", 1000.0, 100.0)] {
            let token = TestApp::shop_token(&format!("{domain}.myshopify.com"));
            let reply = app.graphql(Some(&token), PRODUCTS_5, json!({})).await;
            let status = &reply.body["extensions"]["cost"]["throttleStatus"];
            assert_eq!(status["maximumAvailable"], maximum, "{domain}: {}", reply.body);
            assert_eq!(status["restoreRate"], rate, "{domain}");
        }
        // The plus shop may run what is over the starter's maximum.
        let token = TestApp::shop_token("plus.myshopify.com");
        let big = app.graphql(Some(&token), "{ products(first: 200) { nodes { id } } }", json!({})).await;
        big.data();
    }

    async fn webhooks_and_events_answer_429_with_retry_after(t) {
        let clock = Clock::manual();
        let app = TestApp::with_options(t, options(&clock, 3.0, 1.0)).await;
        for _ in 0..3 {
            let reply = app.payment_callback(b"wrong secret", "paid", "order-1").await;
            assert_ne!(reply.status, 429, "{}", reply.body);
        }
        let refused = app.payment_callback(b"wrong secret", "paid", "order-1").await;
        assert_eq!(refused.status, 429);
        assert_eq!(refused.headers["retry-after"], "1");
        assert_eq!(refused.code(), "THROTTLED");
        // The storefront's `/events` draws from the address's bucket too, before its key
        // is looked at.
        let events = axum::http::Request::post("/events")
            .header("content-type", "application/json")
            .header("x-stratix-ingest-key", "any")
            .body(axum::body::Body::from(r#"{"events": []}"#))
            .unwrap();
        let refused_events = app.send(events).await;
        assert_eq!(refused_events.status, 429, "{}", refused_events.body);
        assert_eq!(refused_events.headers["retry-after"], "1");
        clock.advance(Duration::from_secs(1));
        let again = app.payment_callback(b"wrong secret", "paid", "order-1").await;
        assert_ne!(again.status, 429);
    }

    async fn websocket_queries_and_subscriptions_draw_from_the_same_bucket(t) {
        let t = t.migrated().await;
        let clock = Clock::manual();
        let server = Server::start_with(t.db.clone(), options(&clock, 100.0, 10.0)).await;
        let token = user();
        let mut client = Client::connect(server.addr, false).await;
        client.init(&token).await;
        client.subscribe("q", PRODUCTS_5, json!({})).await;
        let answer = client.event("q", Duration::from_secs(5)).await;
        assert_eq!(answer["extensions"]["cost"]["actualQueryCost"], 2, "{answer}");
        assert_eq!(available(&answer), 98);
        // A subscription is charged its requested cost (3) when it starts.
        let subscription = "subscription($c: ID) { aiTaskUpdated(cloneId: $c) { node { status clone { name } } } }";
        client.subscribe("s", subscription, json!({ "c": Uuid::new_v4().to_string() })).await;
        server.subscribed(1).await;
        let http = server.graphql(Some(&token), PRODUCTS_5, json!({})).await;
        assert_eq!(available(&http), 93, "{http}");
        for _ in 0..9 {
            server.graphql(Some(&token), SPEND_10, json!({})).await;
        }
        // Requested 3, actual 2: 1 point left.
        let last = server.graphql(Some(&token), "{ products(first: 1) { nodes { id } } }", json!({})).await;
        assert_eq!(available(&last), 1, "{last}");
        client.subscribe("q2", PRODUCTS_5, json!({})).await;
        let refused = client.answer("q2", Duration::from_secs(5)).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "THROTTLED", "{refused}");
        client.subscribe("s2", subscription, json!({ "c": Uuid::new_v4().to_string() })).await;
        let refused = client.answer("s2", Duration::from_secs(5)).await;
        assert_eq!(refused["errors"][0]["extensions"]["code"], "THROTTLED", "{refused}");
    }

    async fn sign_in_attempts_are_limited_per_email_and_address_alike_for_unknown_emails(t) {
        let clock = Clock::manual();
        let mut options = options(&clock, 1000.0, 50.0);
        options.throttle.attempts_per_email = 3;
        options.throttle.attempts_per_address = 10;
        options.throttle.attempts_window = Duration::from_secs(60);
        let app = TestApp::with_options(t, options).await;
        let sign_in = |email: &str, password: &str| format!(
            r#"mutation {{ signIn(input: {{email: "{email}", password: "{password}"}}) {{ token userErrors {{ code }} }} }}"#
        );
        let sign_up = r#"mutation { signUp(input: {email: "known@example.com", password: "correct horse"}) { token } }"#;
        app.graphql(None, sign_up, json!({})).await.data();
        for email in ["known@example.com", "KNOWN@example.com ", "unknown@example.com", "unknown@example.com", "unknown@example.com"] {
            let reply = app.graphql(None, &sign_in(email, "wrong"), json!({})).await;
            assert_eq!(reply.data()["signIn"]["userErrors"][0]["code"], "UNAUTHENTICATED", "{}", reply.body);
        }
        // The fourth attempt at either email: the same refusal, before anything is read.
        let anonymous = None;
        let (known, known_statements) = counted(&app, anonymous, &sign_in("known@example.com", "correct horse")).await;
        let (unknown, unknown_statements) = counted(&app, anonymous, &sign_in("unknown@example.com", "x")).await;
        assert_eq!(known.code(), "THROTTLED", "{}", known.body);
        assert_eq!((known_statements, unknown_statements), (0, 0));
        for path in [["message"].as_slice(), &["extensions", "code"], &["extensions", "retryAfter"]] {
            let pick = |reply: &Reply| path.iter().fold(reply.body["errors"][0].clone(), |v, k| v[*k].clone());
            assert_eq!(pick(&known), pick(&unknown), "{path:?}");
        }
        // The address: 6 attempts so far (the refused ones are not counted), 4 more, then none.
        for i in 0..4 {
            let reply = app.graphql(None, &sign_in(&format!("new{i}@example.com"), "x"), json!({})).await;
            assert_eq!(reply.data()["signIn"]["userErrors"][0]["code"], "UNAUTHENTICATED");
        }
        let refused = app.graphql(None, &sign_in("fresh@example.com", "x"), json!({})).await;
        assert_eq!(refused.code(), "THROTTLED", "{}", refused.body);
        // After the window, the right password works.
        clock.advance(Duration::from_secs(60));
        let reply = app.graphql(None, &sign_in("known@example.com", "correct horse"), json!({})).await;
        assert!(reply.data()["signIn"]["token"].is_string(), "{}", reply.body);
        // Invitation acceptance: per user.
        let token = user();
        let accept = r#"mutation { userInvitationAccept(input: {token: "guess"}) { userErrors { code } } }"#;
        for _ in 0..3 {
            let reply = app.graphql(Some(&token), accept, json!({})).await;
            assert_ne!(reply.code(), "THROTTLED", "{}", reply.body);
        }
        let refused = app.graphql(Some(&token), accept, json!({})).await;
        assert_eq!(refused.code(), "THROTTLED", "{}", refused.body);
    }
}

/// POSTs `query` as `token` over a real connection; the JSON answer.
async fn post(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
) -> reqwest::Result<Value> {
    let text = client
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(json!({ "query": query }).to_string())
        .send()
        .await?
        .text()
        .await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `samples` control requests' latencies, in microseconds, appended to `into`.
async fn latencies(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    samples: usize,
    into: &mut Vec<u128>,
) {
    for _ in 0..samples {
        let started = std::time::Instant::now();
        let body = post(client, url, token, PRODUCTS_5).await.unwrap();
        into.push(started.elapsed().as_micros());
        assert!(body["errors"].is_null(), "the control was refused: {body}");
    }
}

fn median(mut samples: Vec<u128>) -> u128 {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

on_both_backends! {
    async fn a_flood_from_one_principal_keeps_anothers_latency_within_twice_normal(t) {
        let t = t.migrated().await;
        // The server on worker threads of its own, as `stratix serve` runs; the flood from
        // another thread, as another client would, at a rate far over its budget (a flood
        // that takes the CPUs is for a proxy in front to stop); the default buckets (1,000
        // points, 50 per second).
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let db = t.db.clone();
        let server = runtime
            .spawn(async move { Server::start_with(db, api::state::Options::default()).await })
            .await
            .unwrap();
        let url = format!("http://{}/graphql", server.addr);
        let client = reqwest::Client::new();
        let control = user();
        latencies(&client, &url, &control, 10, &mut Vec::new()).await;

        // The flood runs while `flooding` is set; `throttled` counts its refusals.
        let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let throttled = Arc::new(AtomicUsize::new(0));
        let flood = {
            let (flooding, stop, throttled, url) = (flooding.clone(), stop.clone(), throttled.clone(), url.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let flooder = user();
                    let client = reqwest::Client::new();
                    let query = "{ products(first: 250) { nodes { id title shop { domain } } } }";
                    let tasks: Vec<_> = (0..4)
                        .map(|_| {
                            let (flooding, stop, throttled, url, flooder, client) = (flooding.clone(), stop.clone(), throttled.clone(), url.clone(), flooder.clone(), client.clone());
                            tokio::spawn(async move {
                                // 25 requests a second on each of 4 connections, each asking
                                // for 502 points: about 1,000 times the budget of 50 a second.
                                let mut tick = tokio::time::interval(Duration::from_millis(40));
                                while !stop.load(Ordering::Relaxed) {
                                    tick.tick().await;
                                    if !flooding.load(Ordering::Relaxed) {
                                        continue;
                                    }
                                    let Ok(body) = post(&client, &url, &flooder, query).await else { continue };
                                    if body["errors"][0]["extensions"]["code"] == "THROTTLED" {
                                        throttled.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                });
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while throttled.load(Ordering::Relaxed) < 20 {
            assert!(std::time::Instant::now() < deadline, "the flood was not throttled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Rounds with and without the flood, so that other load on the machine weighs on
        // both alike.
        let (mut alone, mut flooded) = (Vec::new(), Vec::new());
        for _ in 0..4 {
            flooding.store(false, Ordering::Relaxed);
            latencies(&client, &url, &control, 15, &mut alone).await;
            flooding.store(true, Ordering::Relaxed);
            latencies(&client, &url, &control, 15, &mut flooded).await;
        }
        let refused = throttled.load(Ordering::Relaxed);
        stop.store(true, Ordering::Relaxed);
        flood.join().unwrap();
        runtime.shutdown_background();
        let (normal, during) = (median(alone), median(flooded));
        assert!(
            during <= 2 * normal,
            "control median {during} µs during the flood, {normal} µs before ({refused} flood requests throttled)"
        );
        eprintln!("control median {normal} µs alone, {during} µs during the flood ({refused} flood requests throttled)");
    }
}
