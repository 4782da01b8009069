//! The storefront's side of seed 004: event batches through `POST /events` and
//! `eventsTrack` with the shop's public ingest key (stored once per event id however often
//! retried, refused whole with each bad index named), CORS open on `/events` only, and
//! sticky `experimentAssign`.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::{TestDb, fixtures, on_both_backends};

const TRACK: &str = "mutation($i: EventsTrackInput!) { m: eventsTrack(input: $i) { stored duplicates userErrors { field code message } } }";
const ASSIGN: &str = "mutation($i: ExperimentAssignInput!) { m: experimentAssign(input: $i) { variant config userErrors { field code message } } }";

pub(crate) async fn ingest_key(t: &TestDb, shop: Uuid) -> String {
    let rows = t
        .query(
            "SELECT ingest_key FROM shops WHERE id = $1",
            vec![shop.into()],
        )
        .await;
    rows[0].try_get_by_index(0).unwrap()
}

async fn events_of(t: &TestDb, shop: Uuid) -> i64 {
    let rows = t
        .query(
            "SELECT COUNT(*) FROM events WHERE shop_id = $1",
            vec![shop.into()],
        )
        .await;
    rows[0].try_get_by_index(0).unwrap()
}

fn event(id: &str, kind: &str) -> Value {
    let ts = (chrono::Utc::now() - chrono::Duration::seconds(5)).to_rfc3339();
    json!({ "id": id, "type": kind, "ts": ts, "anonId": "visitor-1", "sessionId": "s1", "props": { "url": "/products/hat" } })
}

pub(crate) fn post_events(key: Option<&str>, body: &Value) -> Request<Body> {
    let mut request = Request::post("/events").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("x-stratix-ingest-key", key);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

/// A GraphQL operation sent with the storefront's ingest key.
pub(crate) fn with_key(key: &str, query: &str, variables: Value) -> Request<Body> {
    Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-stratix-ingest-key", key)
        .body(Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap()
}

pub(crate) fn experiment_gid(id: Uuid) -> String {
    format!("gid://stratix/Experiment/{id}")
}

pub(crate) async fn running_experiment(
    app: &TestApp,
    shop: Uuid,
    name: &str,
    allocation: Value,
) -> Uuid {
    let experiment = fixtures::experiment(&app.t.db, shop, name).await;
    let variants: serde_json::Map<String, Value> = allocation
        .as_object()
        .unwrap()
        .keys()
        .map(|k| (k.clone(), json!({ "copy": format!("copy {k}") })))
        .collect();
    app.t
        .execute(
            "UPDATE experiments SET allocation = $1, variants = $2, status = 'running', started_at = CURRENT_TIMESTAMP WHERE id = $3",
            vec![allocation.into(), Value::Object(variants).into(), experiment.into()],
        )
        .await
        .unwrap();
    experiment
}

fn user_errors(reply: &Reply) -> Value {
    reply.data()["m"]["userErrors"].clone()
}

on_both_backends! {
    /// A retried batch is stored once (through `/events` and `eventsTrack` alike); a batch
    /// with bad events is refused whole, each bad index and field named.
    async fn events_are_stored_once_and_bad_batches_are_refused_whole(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "events.myshopify.com").await;
        let other = fixtures::shop(&app.t.db, "other.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let mine = running_experiment(&app, shop, "cta", json!({ "control": 0.5, "b": 0.5 })).await;
        let theirs = fixtures::experiment(&app.t.db, other, "theirs").await;
        let mut exposure = event("e3", "exposure");
        exposure["experimentId"] = json!(experiment_gid(mine));
        exposure["variant"] = json!("b");
        let batch = json!({ "events": [event("e1", "page_view"), event("e2", "add_to_cart"), exposure] });

        let first = app.send(post_events(Some(&key), &batch)).await;
        let retried = app.send(post_events(Some(&key), &batch)).await;
        let tracked = app
            .graphql(Some(&TestApp::shop_token("events.myshopify.com")), TRACK, json!({ "i": { "events": [event("e4", "purchase"), batch["events"][0].clone()] } }))
            .await;
        let stored = events_of(&app.t, shop).await;

        assert_eq!(first.status, 200, "{}", first.body);
        assert_eq!(first.body, json!({ "stored": 3, "duplicates": 0 }));
        assert_eq!(retried.body, json!({ "stored": 0, "duplicates": 3 }));
        assert_eq!(tracked.data()["m"]["stored"], 1, "{}", tracked.body);
        assert_eq!(tracked.data()["m"]["duplicates"], 1);
        assert_eq!(stored, 4);

        // Index 3's type, index 5's foreign experiment and index 6's unknown variant.
        let mut bad: Vec<Value> = (0..7).map(|i| event(&format!("b{i}"), "page_view")).collect();
        bad[3]["type"] = json!("Page View");
        bad[5]["experimentId"] = json!(experiment_gid(theirs));
        bad[6]["experimentId"] = json!(experiment_gid(mine));
        bad[6]["variant"] = json!("z");
        let refused = app.send(post_events(Some(&key), &json!({ "events": bad }))).await;
        let fields: Vec<Value> = refused.body["userErrors"].as_array().unwrap().iter().map(|e| e["field"].clone()).collect();
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(fields, [json!(["events", "3", "type"])], "the type is refused before any lookup");
        bad[3]["type"] = json!("page_view");
        let refused = app.send(with_key(&key, TRACK, json!({ "i": { "events": bad } }))).await;
        let fields: Vec<(Value, Value)> = user_errors(&refused).as_array().unwrap().iter().map(|e| (e["field"].clone(), e["code"].clone())).collect();
        assert_eq!(fields, [
            (json!(["input", "events", "5", "experimentId"]), json!("NOT_FOUND")),
            (json!(["input", "events", "6", "variant"]), json!("INVALID")),
        ], "{}", refused.body);
        let over: Vec<Value> = (0..1001).map(|i| event(&format!("o{i}"), "page_view")).collect();
        let too_many = app.send(post_events(Some(&key), &json!({ "events": over }))).await;
        assert_eq!(too_many.status, 400);
        assert_eq!(too_many.body["userErrors"][0]["field"], json!(["events"]));
        assert_eq!(events_of(&app.t, shop).await, 4, "nothing of a refused batch is written");
    }

    /// A missing or unknown key, or an uninstalled shop's, is refused and writes nothing;
    /// the key reads nothing and writes nothing else.
    async fn only_an_installed_shops_key_sends_events(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "gone.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let batch = json!({ "events": [event("e1", "page_view")] });

        let missing = app.send(post_events(None, &batch)).await;
        let unknown = app.send(post_events(Some("not-a-key"), &batch)).await;
        let reads = app.send(with_key(&key, "{ shops { nodes { id } } }", json!({}))).await;
        let writes = app.send(with_key(&key, "mutation { m: patchApply(input: {appliedTo: \"x\", payload: {}}) { userErrors { code } } }", json!({}))).await;
        app.t.execute("UPDATE shops SET uninstalled_at = CURRENT_TIMESTAMP WHERE id = $1", vec![shop.into()]).await.unwrap();
        let uninstalled = app.send(post_events(Some(&key), &batch)).await;
        let uninstalled_graphql = app.send(with_key(&key, TRACK, json!({ "i": { "events": batch["events"] } }))).await;

        assert_eq!((missing.status.as_u16(), unknown.status.as_u16()), (401, 401));
        assert_eq!(reads.data()["shops"]["nodes"], json!([]), "{}", reads.body);
        assert_eq!(writes.code(), "FORBIDDEN", "{}", writes.body);
        assert_eq!(uninstalled.status, 401, "{}", uninstalled.body);
        assert_eq!(uninstalled_graphql.code(), "UNAUTHENTICATED");
        assert_eq!(events_of(&app.t, shop).await, 0);
    }

    /// The same visitor always gets the same variant, recorded once; 10,000 visitors
    /// split as the allocation says; a paused experiment, or another shop's, assigns no one.
    async fn assignment_is_sticky_and_follows_the_allocation(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "ab.myshopify.com").await;
        let other = fixtures::shop(&app.t.db, "cd.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let shares = [("b", 0.3), ("c", 0.5), ("control", 0.2)];
        let experiment = running_experiment(&app, shop, "split", json!({ "control": 0.2, "b": 0.3, "c": 0.5 })).await;
        let gid = experiment_gid(experiment);
        let assign = |anon: &str| json!({ "i": { "experimentId": gid, "anonId": anon } });

        let first = app.send(with_key(&key, ASSIGN, assign("sticky"))).await;
        let again = app.send(with_key(&key, ASSIGN, assign("sticky"))).await;
        let as_shop = app.graphql(Some(&TestApp::shop_token("ab.myshopify.com")), ASSIGN, assign("sticky")).await;
        assert_eq!(user_errors(&first), json!([]), "{}", first.body);
        let variant = first.data()["m"]["variant"].clone();
        assert_eq!(again.data()["m"]["variant"], variant);
        assert_eq!(as_shop.data()["m"]["variant"], variant);
        assert_eq!(first.data()["m"]["config"]["copy"], json!(format!("copy {}", variant.as_str().unwrap())));
        let rows = app.t.query("SELECT COUNT(*) FROM assignments WHERE anon_id = 'sticky'", vec![]).await;
        assert_eq!(rows[0].try_get_by_index::<i64>(0).unwrap(), 1);

        // 10,000 visitors: 30 aliases an operation, 10 operations a request.
        let fields: String = (0..30)
            .map(|i| format!("a{i}: experimentAssign(input: {{experimentId: $e, anonId: \"v-${{n}}-{i}\"}}) {{ variant userErrors {{ field code message }} }} "))
            .collect();
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        let mut visitors = 0;
        let mut request = 0;
        while visitors < 10_000 {
            let operations: Vec<Value> = (0..10)
                .map(|o| json!({ "query": format!("mutation($e: ID!) {{ {} }}", fields.replace("${n}", &format!("{request}-{o}"))), "variables": { "e": gid } }))
                .collect();
            request += 1;
            let reply = app.send(Request::post("/graphql").header("content-type", "application/json").header("x-stratix-ingest-key", &key).body(Body::from(Value::Array(operations).to_string())).unwrap()).await;
            for response in reply.body.as_array().unwrap_or_else(|| panic!("{}", reply.body)) {
                for value in response["data"].as_object().unwrap_or_else(|| panic!("{response}")).values() {
                    *counts.entry(value["variant"].as_str().unwrap_or_else(|| panic!("{}", response["errors"])).to_owned()).or_default() += 1;
                    visitors += 1;
                }
            }
        }
        // Pearson's chi-square with 2 degrees of freedom: P(> 40) = e^-20, about 2e-9.
        let n = visitors as f64;
        let chi_square: f64 = shares.iter().map(|(v, share)| {
            let expected = n * share;
            let seen = *counts.get(*v).unwrap_or(&0) as f64;
            (seen - expected).powi(2) / expected
        }).sum();
        assert!(chi_square < 40.0, "{counts:?}: chi-square {chi_square}");
        let stored = app.t.query("SELECT COUNT(*) FROM assignments WHERE experiment_id = $1", vec![experiment.into()]).await;
        assert_eq!(stored[0].try_get_by_index::<i64>(0).unwrap(), visitors as i64 + 1);

        app.t.execute("UPDATE experiments SET status = 'paused' WHERE id = $1", vec![experiment.into()]).await.unwrap();
        let paused = app.send(with_key(&key, ASSIGN, assign("late"))).await;
        let foreign = running_experiment(&app, other, "theirs", json!({ "control": 0.5, "b": 0.5 })).await;
        let theirs = app.send(with_key(&key, ASSIGN, json!({ "i": { "experimentId": experiment_gid(foreign), "anonId": "x" } }))).await;
        assert_eq!(user_errors(&paused)[0]["code"], "INVALID_TRANSITION", "{}", paused.body);
        assert_eq!(user_errors(&paused)[0]["field"], json!(["input", "experimentId"]));
        assert_eq!(user_errors(&theirs)[0]["code"], "NOT_FOUND", "{}", theirs.body);
    }

    /// Concurrent first calls for one visitor make one assignment row.
    async fn concurrent_first_assignments_make_one_row(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "race.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let experiment = running_experiment(&app, shop, "race", json!({ "control": 0.5, "b": 0.5 })).await;
        let variables = json!({ "i": { "experimentId": experiment_gid(experiment), "anonId": "racer" } });
        let replies = futures_util::future::join_all((0..16).map(|_| app.send(with_key(&key, ASSIGN, variables.clone())))).await;
        let variants: std::collections::BTreeSet<String> = replies.iter().map(|r| r.data()["m"]["variant"].as_str().unwrap_or_else(|| panic!("{}", r.body)).to_owned()).collect();
        let rows = app.t.query("SELECT COUNT(*) FROM assignments WHERE anon_id = 'racer'", vec![]).await;
        assert_eq!(variants.len(), 1, "{variants:?}");
        assert_eq!(rows[0].try_get_by_index::<i64>(0).unwrap(), 1);
    }
}

/// `/events` answers any origin's preflight, without credentials; the other paths keep
/// the configured origins.
#[tokio::test]
async fn cors_is_open_on_events_only() {
    let options = api::state::Options {
        cors_origins: vec!["https://admin.example.com".to_owned()],
        ..crate::common::options()
    };
    let app = TestApp::with_options(TestDb::sqlite().await, options).await;
    let preflight = |path: &str| {
        Request::options(path)
            .header("origin", "https://shop.example.com")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-stratix-ingest-key",
            )
            .body(Body::empty())
            .unwrap()
    };
    let header = |reply: &Reply, name: &str| {
        reply
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
    };

    let events = app.send(preflight("/events")).await;
    let graphql = app.send(preflight("/graphql")).await;
    let sent = app
        .send(
            Request::post("/events")
                .header("origin", "https://shop.example.com")
                .header("x-stratix-ingest-key", "unknown")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;

    assert_eq!(
        header(&events, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        header(&events, "access-control-allow-headers")
            .is_some_and(|h| h.contains("x-stratix-ingest-key")),
        "{:?}",
        events.headers
    );
    assert_eq!(header(&events, "access-control-allow-credentials"), None);
    assert_eq!(header(&graphql, "access-control-allow-origin"), None);
    assert_eq!(sent.status, 401);
    assert_eq!(
        header(&sent, "access-control-allow-origin").as_deref(),
        Some("*")
    );
}
