//! Operations: `/ready`, request ids, `/metrics`, JSON logs, a clean shutdown on SIGTERM,
//! and the command line's safety rails.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::process::{Process, stratix};
use crate::common::server::Client;
use crate::common::{TestDb, fixtures, on_both_backends};

/// `GET path` on the app; status and body text.
async fn get(app: &TestApp, path: &str) -> (StatusCode, String) {
    let (parts, body) = app
        .send_raw(Request::get(path).body(Body::empty()).unwrap())
        .await;
    (parts.status, body)
}

/// Polls `/ready` until it answers 200 (the PostgreSQL feed starts listening shortly after
/// the app is built), at most 10 s; the last answer.
async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(app, "/ready").await;
        if status == StatusCode::OK || Instant::now() > deadline {
            return (status, serde_json::from_str(&body).unwrap());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn post() -> axum::http::request::Builder {
    Request::post("/graphql").header("content-type", "application/json")
}

fn body(query: &str) -> Body {
    Body::from(json!({ "query": query }).to_string())
}

/// How many migrations are applied.
async fn applied(t: &TestDb) -> usize {
    t.query("SELECT version FROM seaql_migrations", vec![])
        .await
        .len()
}

/// Rows of `table` with these ids.
async fn present(t: &TestDb, table: &str, ids: &BTreeSet<Uuid>) -> BTreeSet<Uuid> {
    let mut found = BTreeSet::new();
    for row in t.query(&format!("SELECT id FROM {table}"), vec![]).await {
        let id: Uuid = row.try_get("", "id").unwrap();
        if ids.contains(&id) {
            found.insert(id);
        }
    }
    found
}

on_both_backends! {
    async fn ready_answers_200_when_the_database_migrations_and_change_feed_are_up(t) {
        let app = TestApp::new(t).await;

        let (status, body) = ready(&app).await;

        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "ready");
        let (status, _) = get(&app, "/health").await;
        assert_eq!(status, StatusCode::OK);
    }

    async fn ready_answers_503_with_the_reason_while_a_migration_is_pending(t) {
        let app = TestApp::new(t).await;
        assert_eq!(ready(&app).await.0, StatusCode::OK);
        app.t
            .execute(
                "DELETE FROM seaql_migrations WHERE version = (SELECT MAX(version) FROM seaql_migrations)",
                vec![],
            )
            .await
            .unwrap();

        let (status, body) = get(&app, "/ready").await;

        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["status"], "unavailable");
        assert!(
            body["reason"].as_str().unwrap().contains("1 migrations are pending"),
            "{body}"
        );
    }

    async fn a_request_id_is_kept_or_made_and_returned_in_the_header_and_errors(t) {
        let app = TestApp::new(t).await;

        let (kept, kept_body) = app
            .send_raw(
                post()
                    .header("x-request-id", "ops-test-42")
                    .header("authorization", "Bearer not-a-token")
                    .body(body("{ shops { totalCount } }"))
                    .unwrap(),
            )
            .await;
        let (made, made_body) = app
            .send_raw(post().body(body("{ noSuchField }")).unwrap())
            .await;

        assert_eq!(kept.status, StatusCode::UNAUTHORIZED);
        assert_eq!(kept.headers["x-request-id"], "ops-test-42");
        let kept_body: Value = serde_json::from_str(&kept_body).unwrap();
        assert_eq!(kept_body["errors"][0]["extensions"]["requestId"], "ops-test-42");
        let id = made.headers["x-request-id"].to_str().unwrap().to_owned();
        assert_eq!(id.len(), 32, "{id}");
        let made_body: Value = serde_json::from_str(&made_body).unwrap();
        assert_eq!(made_body["errors"][0]["extensions"]["requestId"], id.as_str());
    }

    async fn metrics_count_requests_by_operation_and_outcome_in_prometheus_format(t) {
        let app = TestApp::new(t).await;
        let name = format!("Probe{}", Uuid::new_v4().simple());
        let read = format!("query {name} {{ shops {{ totalCount }} }}");
        let token = TestApp::service();

        for _ in 0..3 {
            app.graphql(Some(&token), &read, json!({})).await.data();
        }
        app.graphql(Some("bad"), &read, json!({})).await;
        let (parts, text) = app
            .send_raw(Request::get("/metrics").body(Body::empty()).unwrap())
            .await;

        assert_eq!(parts.status, StatusCode::OK);
        assert!(parts.headers["content-type"].to_str().unwrap().starts_with("text/plain"));
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} in\n{text}"))
                .to_owned()
        };
        assert_eq!(
            line(&format!("stratix_graphql_requests_total{{operation=\"{name}\",outcome=\"OK\"}}")),
            format!("stratix_graphql_requests_total{{operation=\"{name}\",outcome=\"OK\"}} 3")
        );
        line(&format!(
            "stratix_graphql_requests_total{{operation=\"{name}\",outcome=\"UNAUTHENTICATED\"}} 1"
        ));
        line(&format!("stratix_graphql_request_duration_seconds_bucket{{operation=\"{name}\",le=\"0.005\"}}"));
        line(&format!("stratix_graphql_sql_statements_count{{operation=\"{name}\"}} 4"));
        for metric in [
            "stratix_http_requests_total{route=\"/graphql\",status=\"200\"}",
            "stratix_plan_cache_hits_total",
            "stratix_plan_cache_misses_total",
            "stratix_db_pool_connections{state=\"in_use\"}",
            "stratix_db_pool_max_connections",
            "stratix_subscriptions_open",
            "stratix_websockets_open",
            "stratix_realtime_dispatch_queue_depth",
            "stratix_usage_meter_pending_users",
            "stratix_webhook_deliveries_pending",
        ] {
            line(metric);
        }
    }

    async fn waits_for_a_pool_connection_are_counted_and_timed(t) {
        let t = t.migrated().await;
        let user = fixtures::user(&t.db, "pool@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let mut server =
            Process::serve(&t, &[("DATABASE_POOL_SIZE", "2"), ("STRATIX_JOBS", "false")]).await;
        let url = format!("http://{}/graphql", server.addr);
        let client = reqwest::Client::new();
        let scrape = || async {
            client
                .get(format!("http://{}/metrics", server.addr))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let value = |text: &str, metric: &str| -> Option<u64> {
            text.lines()
                .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
        };
        let before = scrape().await;

        // Sixteen writers at once on two connections: most must wait their turn.
        let writes = (0..16).map(|i| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            async move {
                let query = format!(
                    "mutation {{ projectCreate(input: {{name: \"p{i}\"}}) {{ project {{ rowId }} }} }}"
                );
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/json")
                    .body(json!({ "query": query }).to_string())
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap()
            }
        });
        let answers = futures_util::future::join_all(writes).await;
        let after = scrape().await;
        server.terminate();

        for answer in &answers {
            assert!(answer.contains("rowId"), "{answer}");
        }
        assert_eq!(value(&before, "stratix_db_pool_waits_total"), None, "{before}");
        let waits = value(&after, "stratix_db_pool_waits_total").unwrap_or(0);
        assert!(waits > 0, "{after}");
        assert_eq!(value(&after, "stratix_db_pool_wait_seconds_count"), Some(waits), "{after}");
        assert!(after.contains("stratix_db_pool_wait_seconds_bucket{le=\"0.005\"}"), "{after}");
        assert_eq!(server.exit_code(Duration::from_secs(40)).await, Some(0));
    }

    async fn sigterm_during_writes_exits_0_keeps_every_answered_write_and_closes_sockets_with_1001(t) {
        let t = t.migrated().await;
        let user = fixtures::user(&t.db, "shutdown@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let mut server = Process::serve(&t, &[("STRATIX_JOBS", "false")]).await;
        let mut socket = Client::connect(server.addr, false).await;
        socket.init(&token).await;
        socket
            .subscribe("rows", "subscription { rowChanged(tables: [PROJECTS]) { cursor } }", json!({}))
            .await;
        let url = format!("http://{}/graphql", server.addr);

        // Eight clients write as fast as they can until the server stops answering.
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let (url, token) = (url.clone(), token.clone());
                tokio::spawn(async move {
                    let client = reqwest::Client::new();
                    let mut answered = Vec::new();
                    for i in 0.. {
                        let query = format!(
                            "mutation {{ m: projectCreate(input: {{name: \"w{w}-{i}\"}}) {{ project {{ rowId }} userErrors {{ code }} }} }}"
                        );
                        let sent = client
                            .post(&url)
                            .bearer_auth(&token)
                            .header("content-type", "application/json")
                            .body(json!({ "query": query }).to_string())
                            .send()
                            .await;
                        let Ok(response) = sent else { break };
                        let Ok(text) = response.text().await else { break };
                        let body: Value = serde_json::from_str(&text).unwrap();
                        let id = &body["data"]["m"]["project"]["rowId"];
                        assert!(id.is_string(), "a write failed: {body}");
                        answered.push(id.as_str().unwrap().parse::<Uuid>().unwrap());
                    }
                    answered
                })
            })
            .collect();
        socket.event("rows", Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        server.terminate();
        let last = socket
            .until("rows", Duration::from_secs(10), |e| e["extensions"]["resumeAfter"].is_string())
            .await;
        let (code, reason) = socket.closed(Duration::from_secs(10)).await;
        let code_of_exit = server.exit_code(Duration::from_secs(40)).await;
        let mut answered = BTreeSet::new();
        for writer in writers {
            answered.extend(writer.await.unwrap());
        }

        assert_eq!(code_of_exit, Some(0), "{}", server.logs().join("\n"));
        assert_eq!(code, 1001, "{reason}");
        // The last message says where to resume: after the last event the client got.
        let events = &socket.events["rows"];
        let received = &events[events.len() - 2];
        assert_eq!(last["extensions"]["reason"], "SERVER_SHUTDOWN", "{last}");
        assert_eq!(
            last["extensions"]["resumeAfter"], received["data"]["rowChanged"]["cursor"],
            "{last} after {received}"
        );
        assert!(answered.len() > 10, "only {} writes answered", answered.len());
        assert_eq!(present(&t, "projects", &answered).await, answered);
        assert!(server.logs().iter().any(|l| l.contains("SIGTERM: shutting down")));
    }

    async fn json_logs_are_one_object_per_line_with_the_request_id(t) {
        let t = t.migrated().await;
        let mut server = Process::serve(
            &t,
            &[("STRATIX_LOG_FORMAT", "json"), ("RUST_LOG", "info,api=debug"), ("STRATIX_JOBS", "false")],
        )
        .await;

        let response = reqwest::Client::new()
            .get(format!("http://{}/graphql?query=%7B__typename%7D", server.addr))
            .header("x-request-id", "json-log-probe")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "json-log-probe");
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.terminate();
        assert_eq!(server.exit_code(Duration::from_secs(40)).await, Some(0));

        let logs = server.logs();
        let lines: Vec<Value> = logs
            .iter()
            .filter(|l| l.starts_with('{'))
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(lines.iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening on"))), "{logs:?}");
        let finished = lines
            .iter()
            .find(|l| l["message"] == "request finished" && l["span"]["request_id"] == "json-log-probe")
            .unwrap_or_else(|| panic!("no line of the request in {logs:?}"));
        assert_eq!(finished["status"], 200);
        assert_eq!(finished["span"]["path"], "/graphql");
    }

    async fn migrate_down_reverts_one_and_fresh_wants_yes(t) {
        let t = t.migrated().await;
        let before = applied(&t).await;

        let fresh = stratix(&t).args(["migrate", "fresh"]).output().await.unwrap();
        let after_fresh = applied(&t).await;
        let down = stratix(&t).args(["migrate", "down"]).output().await.unwrap();
        let after_down = applied(&t).await;
        let up = stratix(&t).args(["migrate", "up"]).output().await.unwrap();

        assert!(!fresh.status.success());
        assert!(String::from_utf8_lossy(&fresh.stderr).contains("--yes"));
        assert_eq!(after_fresh, before);
        assert!(down.status.success(), "{}", String::from_utf8_lossy(&down.stderr));
        assert_eq!(after_down, before - 1);
        assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
        assert_eq!(applied(&t).await, before);
    }

    async fn check_reports_orphans_version_gaps_and_stray_events(t) {
        let t = t.migrated().await;
        let clean = stratix(&t).arg("check").output().await.unwrap();
        let shop = fixtures::shop(&t.db, "gaps.myshopify.com").await;
        let product = fixtures::product(&t.db, shop, "1").await;
        fixtures::revision(&t.db, shop, product, 1).await;
        fixtures::revision(&t.db, shop, product, 3).await;
        // An orphan only gets in past the foreign keys, on a connection of its own.
        let single = api::db::connect_for_migrations(&t.url).await.unwrap();
        let off = if t.is_postgres() {
            "SET session_replication_role = replica"
        } else {
            "PRAGMA foreign_keys = OFF"
        };
        use sea_orm::ConnectionTrait as _;
        single.execute_unprepared(off).await.unwrap();
        fixtures::row(&single, "projects", vec![("name", "lost".into()), ("user_id", Uuid::new_v4().into())]).await;
        single.close().await.unwrap();
        if t.is_postgres() {
            let far = chrono::Utc::now() + chrono::Duration::days(800);
            fixtures::event(&t.db, shop, "page_view", far).await;
        }

        let dirty = stratix(&t).arg("check").output().await.unwrap();

        assert!(clean.status.success(), "{}", String::from_utf8_lossy(&clean.stdout));
        assert!(!dirty.status.success());
        let report = String::from_utf8(dirty.stdout).unwrap();
        assert!(report.contains("❌ Rows whose parent is missing: projects.user_id: 1 rows"), "{report}");
        assert!(report.contains("❌ Version sequences with gaps: content_revisions"), "{report}");
        assert!(report.contains("versions 1..3, 2 rows"), "{report}");
        assert!(report.contains("✅ Every credit balance equals the sum of its ledger"), "{report}");
        if t.is_postgres() {
            assert!(report.contains("❌ events_default holds rows: 1 rows"), "{report}");
        }
    }

    async fn partitions_makes_this_and_next_months_and_keeps_retention(t) {
        let t = t.migrated().await;
        let shop = fixtures::shop(&t.db, "parts.myshopify.com").await;
        let old = chrono::Utc::now() - chrono::Duration::days(200);
        let recent = chrono::Utc::now() - chrono::Duration::days(1);
        fixtures::event(&t.db, shop, "old", old).await;
        fixtures::event(&t.db, shop, "recent", recent).await;

        let (first, _) = api::ops::partitions::upkeep(&t.db, 90).await.unwrap();
        let (again, _) = api::ops::partitions::upkeep(&t.db, 90).await.unwrap();

        let kinds: Vec<String> = t
            .query("SELECT event_type FROM events ORDER BY event_type", vec![])
            .await
            .iter()
            .map(|r| r.try_get("", "event_type").unwrap())
            .collect();
        assert_eq!(kinds, ["recent"]);
        assert_eq!(again, api::ops::partitions::Upkeep::default());
        // The migration made this month's and next month's partitions already.
        let retained = api::ops::retention::Retained { dropped: 0, deleted: 1, purged: 0 };
        assert_eq!(first, api::ops::partitions::Upkeep { made: 0, retained });
        let report = api::ops::check::run(&t.db).await.unwrap();
        assert!(report.passed(), "{report}");
    }

    async fn graphiql_is_served_from_the_binary_and_its_example_query_runs(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "demo@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());

        let (status, page) = get(&app, "/").await;
        let mut assets = Vec::new();
        for name in ["graphiql.min.js", "graphiql.min.css", "react.production.min.js", "react-dom.production.min.js"] {
            let path = format!("/graphiql/{}/{name}", api::graphiql::VERSION);
            let (parts, body) = app
                .send_raw(Request::get(path.as_str()).body(Body::empty()).unwrap())
                .await;
            assets.push((path, parts.status, body.len()));
        }
        let (missing, _) = get(&app, "/graphiql/0.0.1/graphiql.min.js").await;
        let example = app.graphql(Some(&token), api::graphiql::EXAMPLE_QUERY, json!({})).await;

        assert_eq!(status, StatusCode::OK);
        assert!(!page.contains("https://"), "the page loads something from the internet");
        for (path, status, length) in assets {
            assert_eq!(status, StatusCode::OK, "{path}");
            assert!(page.contains(&path), "{path} not on the page");
            assert!(length > 5000, "{path}: {length} bytes");
        }
        assert_eq!(missing, StatusCode::NOT_FOUND);
        assert_eq!(example.data()["creditAccounts"]["nodes"][0]["balance"], 100);
    }
}

/// GraphiQL in a real browser: headless Chromium (`CHROMIUM`, or Debian's `chromium`)
/// driven by `puppeteer-core` (`tests/browser/`, installed from its lockfile on first run)
/// opens `/` of a development-mode server, runs the query the page opened with, and sees
/// the demo user's data; nothing is fetched from outside the server. Skipped, saying so,
/// without Chromium.
#[tokio::test]
async fn graphiql_runs_its_example_query_in_headless_chromium() {
    let chromium = std::env::var("CHROMIUM")
        .map(std::path::PathBuf::from)
        .ok()
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
        });
    let Some(chromium) = chromium else {
        eprintln!("GraphiQL browser test skipped: no Chromium (set CHROMIUM or install chromium)");
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !dir.join("node_modules/puppeteer-core").exists() {
        let status = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .await
            .unwrap_or_else(|e| panic!("npm is needed for this test (Node 20+): {e:?}"));
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    let t = TestDb::sqlite().await;
    let mut server = Process::serve(&t, &[("JWT_SECRET", ""), ("STRATIX_JOBS", "false")]).await;

    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("node")
            .arg("graphiql.mjs")
            .arg(format!("http://{}", server.addr))
            .arg(&chromium)
            .current_dir(&dir)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    server.terminate();
    server.exit_code(Duration::from_secs(40)).await;

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    let result: Value = serde_json::from_str(seen["result"].as_str().unwrap()).unwrap();
    assert_eq!(
        result["data"]["creditAccounts"]["nodes"][0]["balance"], 100,
        "{result}"
    );
    assert_eq!(seen["external"], json!([]));
}

/// A subscriber of a server that shuts down is told, for each subscription, the cursor to
/// resume after (also one that has had no event yet); it reconnects to the next server,
/// resumes `after` it and hears of every change made in between, none twice.
/// PostgreSQL only: there `change_events` outlives a process (SQLite's ring does not).
#[tokio::test]
async fn a_subscription_resumed_after_a_restart_misses_nothing() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let user = fixtures::user(&t.db, "resume@example.com").await;
    let token = TestApp::token("authenticated", &user.to_string());
    let project = |name: &'static str| {
        let db = t.db.clone();
        async move {
            fixtures::row(
                &db,
                "projects",
                vec![("name", name.into()), ("user_id", user.into())],
            )
            .await
        }
    };
    const ROWS: &str = "subscription($after: String) {
      rowChanged(tables: [PROJECTS], after: $after) { cursor op rowId } }";
    let mut first = Process::serve(&t, &[("STRATIX_JOBS", "false")]).await;
    let mut socket = Client::connect(first.addr, false).await;
    socket.init(&token).await;
    socket.subscribe("rows", ROWS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let heard = project("heard").await;
    let event = socket
        .until("rows", Duration::from_secs(10), |e| {
            e["data"]["rowChanged"]["rowId"] == heard.to_string()
        })
        .await;
    // A second subscription that has had no event yet.
    socket.subscribe("quiet", ROWS, json!({})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    first.terminate();
    let resume_after = |e: &Value| e["extensions"]["resumeAfter"].as_str().map(str::to_owned);
    let rows_last = socket
        .until("rows", Duration::from_secs(10), |e| {
            resume_after(e).is_some()
        })
        .await;
    let quiet_last = socket
        .seen("quiet", Duration::from_secs(10), |e| {
            resume_after(e).is_some()
        })
        .await;
    let (code, _) = socket.closed(Duration::from_secs(10)).await;
    assert_eq!(first.exit_code(Duration::from_secs(40)).await, Some(0));
    let missed = [project("missed-1").await, project("missed-2").await];
    let second = Process::serve(&t, &[("STRATIX_JOBS", "false")]).await;
    let mut resumed = Client::connect(second.addr, false).await;
    resumed.init(&token).await;
    for (id, last) in [("rows", &rows_last), ("quiet", &quiet_last)] {
        resumed
            .subscribe(id, ROWS, json!({ "after": resume_after(last).unwrap() }))
            .await;
    }
    let live = project("live").await;
    let is_live = |e: &Value| e["data"]["rowChanged"]["rowId"] == live.to_string();
    for id in ["rows", "quiet"] {
        resumed.seen(id, Duration::from_secs(10), is_live).await;
    }

    assert_eq!(code, 1001);
    assert_eq!(
        resume_after(&rows_last).as_deref(),
        event["data"]["rowChanged"]["cursor"].as_str(),
        "the last event sent, then the cursor to resume after: {rows_last}"
    );
    assert_eq!(
        socket.events["quiet"].len(),
        1,
        "{:?}",
        socket.events["quiet"]
    );
    assert_eq!(quiet_last["extensions"]["reason"], "SERVER_SHUTDOWN");
    let row = |e: &Value| {
        e["data"]["rowChanged"]["rowId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let expected = [
        missed[0].to_string(),
        missed[1].to_string(),
        live.to_string(),
    ];
    for id in ["rows", "quiet"] {
        let rows: Vec<String> = resumed.events[id].iter().map(row).collect();
        assert_eq!(rows, expected, "{id}");
    }
}

/// With `STRATIX_METRICS_LISTEN`, `/metrics` is served there and not on the API's address.
#[tokio::test]
async fn metrics_may_listen_on_an_address_of_their_own() {
    let t = TestDb::sqlite().await;
    let metrics = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap()
    };
    let mut server = Process::serve(
        &t,
        &[
            ("STRATIX_METRICS_LISTEN", &metrics.to_string()),
            ("STRATIX_JOBS", "false"),
        ],
    )
    .await;
    let client = reqwest::Client::new();

    let there = client
        .get(format!("http://{metrics}/metrics"))
        .send()
        .await
        .unwrap();
    let status = there.status();
    let text = there.text().await.unwrap();
    let on_api = client
        .get(format!("http://{}/metrics", server.addr))
        .send()
        .await
        .unwrap()
        .status();
    server.terminate();

    assert_eq!(status, 200);
    assert!(text.contains("stratix_db_pool_max_connections"), "{text}");
    assert_eq!(on_api, 404);
    assert_eq!(server.exit_code(Duration::from_secs(40)).await, Some(0));
}
