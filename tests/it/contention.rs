//! Work that cannot hold the server: concurrent sign-ups for one email answer fast without
//! exhausting the pool, and a slow statement or request ends in a clean `TIMEOUT`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::app::TestApp;
use crate::common::{TestDb, fixtures, on_both_backends};

const SIGN_UP: &str =
    "mutation($i: SignUpInput!) { signUp(input: $i) { token userErrors { code } } }";
const CREATE: &str = "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } userErrors { code } } }";

on_both_backends! {
    async fn twenty_concurrent_sign_ups_for_one_email_answer_fast_and_one_wins(t) {
        let app = TestApp::new(t).await;
        let input = json!({ "i": { "email": "race@example.com", "password": "correct horse battery" } });

        let started = Instant::now();
        let sign_ups = futures_util::future::join_all(
            (0..20).map(|_| app.graphql(None, SIGN_UP, input.clone())),
        );
        // Meanwhile another request is served without waiting for the pool.
        let other = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let asked = Instant::now();
            let reply = app.query("{ shops { totalCount } }", json!({})).await;
            (reply, asked.elapsed())
        };
        let (replies, (other, other_took)) = tokio::join!(sign_ups, other);
        let took = started.elapsed();

        let mut won = 0;
        for reply in &replies {
            let payload = &reply.data()["signUp"];
            if payload["token"].is_string() {
                won += 1;
            } else {
                assert_eq!(payload["userErrors"][0]["code"], "TAKEN", "{}", reply.body);
            }
        }
        assert_eq!(won, 1);
        assert_eq!(other.data()["shops"]["totalCount"], 0);
        assert!(took < Duration::from_secs(8), "{took:?}");
        assert!(other_took < Duration::from_secs(3), "{other_took:?}");
        let users = app.query("{ users { totalCount } }", json!({})).await;
        assert_eq!(users.data()["users"]["totalCount"], 1);
    }
}

/// Makes every insert into `products` take `seconds` (PostgreSQL only).
async fn slow_inserts(t: &TestDb, seconds: f64) {
    t.execute(
        &format!(
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$"
        ),
        vec![],
    )
    .await
    .unwrap();
    t.execute(
        "CREATE TRIGGER slow_insert BEFORE INSERT ON products FOR EACH ROW EXECUTE FUNCTION slow_insert()",
        vec![],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_statement_over_the_statement_timeout_ends_in_timeout_and_writes_nothing() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let mut options = api::state::Options::default();
    options.limits.statement_timeout = Duration::from_millis(300);
    let app = TestApp::with_options(t, options).await;
    slow_inserts(&app.t, 3.0).await;
    let shop = fixtures::shop(&app.t.db, "slow.myshopify.com").await;
    let input =
        json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "one", "title": "One" } });

    let started = Instant::now();
    let reply = app.query(CREATE, input).await;
    let took = started.elapsed();

    assert_eq!(reply.code(), "TIMEOUT", "{}", reply.body);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let products = app.query("{ products { totalCount } }", json!({})).await;
    assert_eq!(products.data()["products"]["totalCount"], 0);
}

#[tokio::test]
async fn a_request_over_the_request_timeout_ends_in_timeout_and_writes_nothing() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let mut options = api::state::Options::default();
    options.limits.request_timeout = Duration::from_millis(300);
    let app = TestApp::with_options(t, options).await;
    slow_inserts(&app.t, 1.0).await;
    let shop = fixtures::shop(&app.t.db, "slow.myshopify.com").await;
    let input =
        json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "one", "title": "One" } });

    let started = Instant::now();
    let reply = app.query(CREATE, input).await;
    let took = started.elapsed();
    // The cancelled transaction rolls back when its connection is returned.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    assert_eq!(reply.code(), "TIMEOUT", "{}", reply.body);
    assert!(took < Duration::from_millis(900), "{took:?}");
    let products = app.query("{ products { totalCount } }", json!({})).await;
    assert_eq!(products.data()["products"]["totalCount"], 0);
}

/// A query over the WebSocket has the request timeout it has over HTTP: cancelled with
/// `TIMEOUT`, as an `error` message (it never answered).
#[tokio::test]
async fn a_query_over_the_socket_has_the_request_timeout_too() {
    use crate::common::server::{Client, Incoming, Server};
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let mut options = api::state::Options::default();
    options.limits.request_timeout = Duration::from_millis(300);
    let server = Server::start_with(t.db.clone(), options).await;
    let mut client = Client::connect(server.addr, false).await;
    client.init(&TestApp::service()).await;
    // Every read of `shops` waits for this lock.
    let lock = t.db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE shops IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();

    let started = Instant::now();
    client
        .subscribe("slow", "{ shops { totalCount } }", json!({}))
        .await;
    let answer = loop {
        match client.recv(Duration::from_secs(5)).await {
            Some(Incoming::Json(message)) if message["id"] == "slow" => break message,
            Some(Incoming::Json(_)) => {}
            other => panic!("no answer: {other:?}"),
        }
    };
    let took = started.elapsed();
    lock.rollback().await.unwrap();

    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(
        answer["payload"][0]["extensions"]["code"], "TIMEOUT",
        "{answer}"
    );
    assert!(took < Duration::from_secs(2), "{took:?}");
}
