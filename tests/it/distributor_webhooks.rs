//! A distributor's webhooks: endpoints managed by admins with the secret shown once, events
//! queued in the transaction of their change, delivered signed to a real receiver on
//! 127.0.0.1 that fails twice first, once each across two instances, and nothing lost over
//! a restart.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::domains::distribution::delivery::{Deliverer, DeliveryConfig};
use api::domains::distribution::webhooks::SIGNING_SECRET;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::common::app::{TestApp, encryption};
use crate::common::{TestDb, on_both_backends};
use crate::distribution::{distributor, member, person};
use crate::messages::{RECEIVE, whatsapp};

const CREATE: &str = "mutation($i: WebhookEndpointCreateInput!) { m: webhookEndpointCreate(input: $i) { webhookEndpoint { id url events active } secret userErrors { field code message } } }";
const UPDATE: &str = "mutation($i: WebhookEndpointUpdateInput!) { m: webhookEndpointUpdate(input: $i) { webhookEndpoint { url events active description } userErrors { field code message } } }";

/// How the receiver answers its n-th request (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// Never answers (the sender gives up or dies first).
    Hang,
}

/// One request the receiver got.
#[derive(Clone, Debug)]
pub struct Seen {
    pub signature: String,
    pub event_id: String,
    pub delivery_id: String,
    pub body: Vec<u8>,
    pub answer: Answer,
}

/// A webhook receiver on 127.0.0.1, answering by `script`.
pub struct Receiver {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    count: watch::Receiver<usize>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(script: fn(usize) -> Answer, delay: Duration) -> Self {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (tell, count) = watch::channel(0);
        let tell = Arc::new(tell);
        let handler = {
            let seen = seen.clone();
            move |headers: HeaderMap, body: axum::body::Bytes| {
                let seen = seen.clone();
                let tell = tell.clone();
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let answer = {
                        let mut seen = seen.lock().unwrap();
                        let answer = script(seen.len());
                        seen.push(Seen {
                            signature: header("stratix-signature"),
                            event_id: header("stratix-event-id"),
                            delivery_id: header("stratix-delivery-id"),
                            body: body.to_vec(),
                            answer,
                        });
                        tell.send_replace(seen.len());
                        answer
                    };
                    tokio::time::sleep(delay).await;
                    match answer {
                        Answer::Status(code) => StatusCode::from_u16(code).unwrap(),
                        Answer::Hang => {
                            std::future::pending::<()>().await;
                            StatusCode::OK
                        }
                    }
                }
            }
        };
        let router = axum::Router::new().route("/hook", axum::routing::post(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            url,
            seen,
            count,
            task,
        }
    }

    /// Waits (at most 30 s) until it has had `n` requests.
    pub async fn requests(&mut self, n: usize) -> Vec<Seen> {
        tokio::time::timeout(Duration::from_secs(30), self.count.wait_for(|c| *c >= n))
            .await
            .unwrap_or_else(|_| panic!("the receiver did not get {n} requests"))
            .unwrap();
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fast retries for tests.
pub fn config(timeout: Duration) -> DeliveryConfig {
    DeliveryConfig {
        timeout,
        backoff: Duration::from_millis(50),
        poll: Duration::from_millis(20),
        allow_loopback: true,
    }
}

/// The app, allowing http:// endpoints on loopback.
pub async fn app(t: TestDb) -> TestApp {
    let options = api::state::Options {
        webhooks_allow_loopback: true,
        ..Default::default()
    };
    TestApp::with_options(t, options).await
}

/// Checks `Stratix-Signature` as a receiver would (docs/webhooks.md).
pub fn verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header
        .strip_prefix("t=")
        .and_then(|rest| rest.split_once(",v1="))
    else {
        return false;
    };
    let mut signed = format!("{t}.").into_bytes();
    signed.extend_from_slice(body);
    hex_of(&api::webhooks::digest(secret.as_bytes(), &signed)) == v1
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The deliveries' (status, attempts, attempt log), oldest first.
async fn deliveries(t: &TestDb) -> Vec<(String, i32, Value)> {
    t.query(
        "SELECT status, attempts, attempt_log FROM webhook_deliveries ORDER BY created_at, id",
        vec![],
    )
    .await
    .iter()
    .map(|r| {
        (
            r.try_get::<String>("", "status").unwrap(),
            r.try_get::<i32>("", "attempts").unwrap(),
            r.try_get::<Value>("", "attempt_log").unwrap(),
        )
    })
    .collect()
}

/// Waits (at most 30 s) until no delivery is pending.
pub async fn settled(t: &TestDb) -> Vec<(String, i32, Value)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = deliveries(t).await;
        if now.iter().all(|(status, ..)| status != "pending") {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still pending: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// An admin's endpoint for `events` at `url`: (global id, secret).
pub async fn endpoint(app: &TestApp, token: &str, url: &str, events: &[&str]) -> (String, String) {
    let made = app
        .graphql(
            Some(token),
            CREATE,
            json!({ "i": { "url": url, "events": events } }),
        )
        .await;
    assert_eq!(made.data()["m"]["userErrors"], json!([]), "{}", made.body);
    (
        made.data()["m"]["webhookEndpoint"]["id"]
            .as_str()
            .unwrap()
            .to_owned(),
        made.data()["m"]["secret"].as_str().unwrap().to_owned(),
    )
}

on_both_backends! {
    /// Admins manage endpoints (URL and events checked, the secret shown once and stored
    /// encrypted); a message queues its event with the message, and the deliverer gets it
    /// to a receiver that fails twice: accepted once, on the third attempt, signed, with
    /// every attempt logged.
    async fn an_event_reaches_a_receiver_that_fails_twice_signed_and_logged(t) {
        let app = app(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        let mut receiver = Receiver::start(|n| if n < 2 { Answer::Status(500) } else { Answer::Status(200) }, Duration::ZERO).await;

        // Members may not manage endpoints; bad URLs and events are refused; nothing written.
        let by_member = app.graphql(Some(&staff.token), CREATE, json!({ "i": { "url": receiver.url, "events": ["message.received"] } })).await;
        assert_eq!(by_member.code(), "FORBIDDEN", "{}", by_member.body);
        for (input, field) in [
            (json!({ "url": "https://10.0.0.7/hook", "events": ["message.received"] }), "url"),
            (json!({ "url": "http://hooks.example.com/", "events": ["message.received"] }), "url"),
            (json!({ "url": "https://hooks.example.com/", "events": ["order.deleted"] }), "events"),
            (json!({ "url": "https://hooks.example.com/", "events": [] }), "events"),
        ] {
            let refused = app.graphql(Some(&owner.token), CREATE, json!({ "i": input })).await;
            assert_eq!(refused.data()["m"]["userErrors"][0]["field"], json!(["input", field]), "{}", refused.body);
        }
        assert!(app.t.query("SELECT id FROM webhook_endpoints", vec![]).await.is_empty());

        let (hook, secret) = endpoint(&app, &owner.token, &receiver.url, &["message.received", "order.created"]).await;
        assert!(secret.starts_with("whsec_"));
        let stored: Vec<u8> = app.t.query("SELECT secret_enc FROM webhook_endpoints", vec![]).await[0]
            .try_get("", "secret_enc").unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains(&secret));
        assert_eq!(encryption().decrypt(SIGNING_SECRET, &stored).unwrap(), secret.as_bytes());
        let read = app.graphql(Some(&owner.token), "{ webhookEndpoints { nodes { url events active } } }", json!({})).await;
        assert!(!read.body.to_string().contains(&secret));
        assert_eq!(read.data()["webhookEndpoints"]["nodes"][0]["events"], json!(["message.received", "order.created"]));

        // The event is queued with the message, before any delivery.
        let received = app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+44 7700 900123", "2 boxes please")).await;
        let message = received.data()["messageReceive"]["message"]["rowId"].as_str().unwrap().to_owned();
        assert_eq!(deliveries(&app.t).await, vec![("pending".to_owned(), 0, json!([]))]);
        // Admins change endpoints one field at a time.
        let off = app.graphql(Some(&owner.token), UPDATE, json!({ "i": { "id": hook, "description": "ERP" } })).await;
        assert_eq!(off.data()["m"]["webhookEndpoint"]["description"], "ERP", "{}", off.body);

        let deliverer = Deliverer::start(app.t.db.clone(), encryption(), config(Duration::from_secs(2)));
        let seen = receiver.requests(3).await;
        let done = settled(&app.t).await;
        deliverer.stop().await;

        assert_eq!(seen.len(), 3, "{seen:?}");
        assert_eq!(seen.iter().map(|s| s.answer).collect::<Vec<_>>(), [Answer::Status(500), Answer::Status(500), Answer::Status(200)]);
        let accepted = &seen[2];
        assert!(verifies(&secret, &accepted.signature, &accepted.body), "{}", accepted.signature);
        assert!(!verifies("whsec_other", &accepted.signature, &accepted.body));
        let body: Value = serde_json::from_slice(&accepted.body).unwrap();
        assert_eq!(body["type"], "message.received");
        assert_eq!(body["id"], accepted.event_id.as_str());
        assert_eq!(body["data"]["message_id"], message.as_str());
        assert_eq!(body["data"]["body_redacted"], "2 boxes please");
        assert!(seen.iter().all(|s| s.event_id == accepted.event_id && s.delivery_id == accepted.delivery_id));
        let (status, attempts, log) = &done[0];
        assert_eq!((status.as_str(), *attempts), ("succeeded", 3));
        let codes: Vec<Value> = log.as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect();
        assert_eq!(codes, [json!(500), json!(500), json!(200)]);
        assert!(log.as_array().unwrap().iter().all(|a| a["duration_ms"].is_u64() && a["at"].is_string()));
        assert_eq!(log[0]["error"], "HTTP 500 Internal Server Error");
        assert!(log[2]["error"].is_null());
        let shown = app.graphql(Some(&owner.token), "{ webhookDeliveries { nodes { status attempts statusCode deliveredAt } } }", json!({})).await;
        assert_eq!(shown.data()["webhookDeliveries"]["nodes"][0]["statusCode"], 200, "{}", shown.body);
    }

    /// A deliverer that stops after a failed attempt, and another that dies while its
    /// request is in flight, lose nothing: a new one (a new pool, as after a restart)
    /// finishes the delivery, and the log keeps every recorded attempt.
    async fn a_restart_between_and_during_attempts_loses_nothing(t) {
        let app = app(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let mut receiver = Receiver::start(|n| match n {
            0 => Answer::Status(503),
            1 => Answer::Hang,
            _ => Answer::Status(204),
        }, Duration::ZERO).await;
        let (_, secret) = endpoint(&app, &owner.token, &receiver.url, &["message.received"]).await;
        app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+44 7700 900123", "hello")).await;

        let timeout = Duration::from_secs(1);
        let first = Deliverer::start(app.t.db.clone(), encryption(), config(timeout));
        receiver.requests(2).await;
        // Killed while the second attempt waits for its answer: that attempt is never
        // recorded, and its claim holds the delivery until it runs out.
        first.stop().await;
        let after_crash = deliveries(&app.t).await;
        assert_eq!((after_crash[0].0.as_str(), after_crash[0].1), ("pending", 1));

        let pool = api::db::connect(&app.t.url).await.unwrap();
        let second = Deliverer::start(pool, encryption(), config(timeout));
        let seen = receiver.requests(3).await;
        let done = settled(&app.t).await;
        second.stop().await;

        assert_eq!(seen.len(), 3);
        assert!(verifies(&secret, &seen[2].signature, &seen[2].body));
        let (status, attempts, log) = &done[0];
        assert_eq!((status.as_str(), *attempts), ("succeeded", 2), "{log}");
        assert_eq!(log.as_array().unwrap().iter().map(|a| a["status_code"].clone()).collect::<Vec<_>>(), [json!(503), json!(204)]);
    }
}

on_both_backends! {
    /// Orders made by the generated writes are announced like those made from an AI
    /// response: one `order.created` per new order, none for an upsert that updates, none
    /// for a request that rolls back.
    async fn generated_orders_are_announced_to_webhooks(t) {
        let app = app(t).await;
        let owner = person(&app, "owner@example.com").await;
        distributor(&app, &owner, "Acme").await;
        endpoint(&app, &owner.token, "https://hooks.example.com/orders", &["order.created"]).await;
        let customer = app.graphql(Some(&owner.token), "mutation { m: customerCreate(input: {name: \"Ada\"}) { customer { rowId } } }", json!({})).await;
        let customer = customer.data()["m"]["customer"]["rowId"].clone();
        let order = |number: &str| json!({ "customerId": customer, "orderNumber": number, "totalAmount": "12.50", "source": "manual" });
        const CREATE: &str = "mutation($i: OrderCreateInput!) { m: orderCreate(input: $i) { order { rowId } userErrors { field code message } } }";
        const UPSERT: &str = "mutation($i: [OrderCreateInput!]!) { m: ordersUpsert(inputs: $i) { orders { rowId } userErrors { field code message } } }";

        let created = app.graphql(Some(&owner.token), CREATE, json!({ "i": order("A-1") })).await;
        let upserted = app.graphql(Some(&owner.token), UPSERT, json!({ "i": [order("A-1"), order("A-2")] })).await;
        let rolled_back = app
            .graphql(Some(&owner.token), "mutation($i: OrderCreateInput!, $j: OrderCreateInput!) { a: orderCreate(input: $i) { order { rowId } } b: orderCreate(input: $j) { userErrors { code } } }", json!({ "i": order("A-3"), "j": order("A-1") }))
            .await;

        assert_eq!(created.data()["m"]["userErrors"], json!([]), "{}", created.body);
        assert_eq!(upserted.data()["m"]["userErrors"], json!([]), "{}", upserted.body);
        assert_eq!(rolled_back.body["extensions"]["transaction"], "ROLLED_BACK", "{}", rolled_back.body);
        let queued = app.t.query("SELECT event, payload FROM webhook_deliveries ORDER BY created_at, id", vec![]).await;
        let numbers: Vec<(String, String)> = queued
            .iter()
            .map(|row| {
                let payload: Value = row.try_get_by_index(1).unwrap();
                (row.try_get_by_index(0).unwrap(), payload["data"]["order_number"].as_str().unwrap().to_owned())
            })
            .collect();
        let mut numbers_sorted = numbers.clone();
        numbers_sorted.sort();
        assert_eq!(numbers_sorted, [("order.created".to_owned(), "A-1".to_owned()), ("order.created".to_owned(), "A-2".to_owned())]);
        let first: Value = queued[0].try_get_by_index(1).unwrap();
        assert_eq!(first["data"]["order_id"], created.data()["m"]["order"]["rowId"]);
        assert_eq!(first["data"]["total_amount"], "12.50");
    }

    /// An integration's config holds no secret; its secrets are set by admins, stored
    /// encrypted under the current key and served by no field.
    async fn integration_secrets_are_encrypted_and_config_holds_none(t) {
        let app = app(t).await;
        let owner = person(&app, "owner@example.com").await;
        distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        const CREATE_INTEGRATION: &str = "mutation($i: ExternalIntegrationCreateInput!) { m: externalIntegrationCreate(input: $i) { externalIntegration { id provider config } userErrors { field code message } } }";
        const SET: &str = "mutation($i: ExternalIntegrationSetSecretsInput!) { m: externalIntegrationSetSecrets(input: $i) { externalIntegration { provider } userErrors { field code message } } }";

        let leaky = app.graphql(Some(&owner.token), CREATE_INTEGRATION, json!({ "i": { "provider": "twilio", "config": { "auth_token": "tok_1" } } })).await;
        assert_eq!(leaky.data()["m"]["userErrors"][0]["field"], json!(["input", "config"]), "{}", leaky.body);
        let made = app.graphql(Some(&owner.token), CREATE_INTEGRATION, json!({ "i": { "provider": "twilio", "config": { "account_sid": "AC1" } } })).await;
        let id = made.data()["m"]["externalIntegration"]["id"].as_str().unwrap_or_else(|| panic!("{}", made.body)).to_owned();

        let by_member = app.graphql(Some(&staff.token), SET, json!({ "i": { "id": id, "secrets": { "auth_token": "tok_2" } } })).await;
        assert!(by_member.data()["m"]["externalIntegration"].is_null(), "{}", by_member.body);
        let bad = app.graphql(Some(&owner.token), SET, json!({ "i": { "id": id, "secrets": { "auth_token": 42 } } })).await;
        assert_eq!(bad.data()["m"]["userErrors"][0]["field"], json!(["input", "secrets"]), "{}", bad.body);
        let set = app.graphql(Some(&owner.token), SET, json!({ "i": { "id": id, "secrets": { "auth_token": "tok_2" } } })).await;
        assert_eq!(set.data()["m"]["userErrors"], json!([]), "{}", set.body);

        let stored: Vec<u8> = app.t.query("SELECT secrets_enc FROM external_integrations", vec![]).await[0]
            .try_get("", "secrets_enc").unwrap();
        assert!(!String::from_utf8_lossy(&stored).contains("tok_2"));
        let opened = encryption().decrypt(api::domains::distribution::integration_secrets::SECRETS, &stored).unwrap();
        assert_eq!(serde_json::from_slice::<Value>(&opened).unwrap(), json!({ "auth_token": "tok_2" }));
        let read = app.graphql(Some(&owner.token), "{ externalIntegrations { nodes { provider config } } }", json!({})).await;
        assert!(!read.body.to_string().contains("tok_2"), "{}", read.body);
        let cleared = app.graphql(Some(&owner.token), SET, json!({ "i": { "id": id, "secrets": {} } })).await;
        assert_eq!(cleared.data()["m"]["userErrors"], json!([]), "{}", cleared.body);
        let gone = app.t.query("SELECT secrets_enc FROM external_integrations", vec![]).await[0]
            .try_get::<Option<Vec<u8>>>("", "secrets_enc").unwrap();
        assert!(gone.is_none());
    }
}

/// Two instances on one PostgreSQL database deliver every event exactly once between them.
#[tokio::test]
async fn two_instances_deliver_each_event_once() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let app = app(t).await;
    let owner = person(&app, "owner@example.com").await;
    let (gid, _) = distributor(&app, &owner, "Acme").await;
    // Slow enough that both deliverers have requests in flight at once.
    let mut receiver = Receiver::start(|_| Answer::Status(200), Duration::from_millis(20)).await;
    endpoint(&app, &owner.token, &receiver.url, &["message.received"]).await;
    let events = 60;
    for n in 0..events {
        let reply = app
            .query(
                RECEIVE,
                whatsapp(&gid, &format!("wamid.{n}"), "+44 7700 900123", "hi"),
            )
            .await;
        assert!(
            reply.data()["messageReceive"]["message"].is_object(),
            "{}",
            reply.body
        );
    }
    let other = api::db::connect(&app.t.url).await.unwrap();
    let one = Deliverer::start(
        app.t.db.clone(),
        encryption(),
        config(Duration::from_secs(2)),
    );
    let two = Deliverer::start(other, encryption(), config(Duration::from_secs(2)));
    let seen = receiver.requests(events).await;
    let done = settled(&app.t).await;
    one.stop().await;
    two.stop().await;

    let mut ids: Vec<&str> = seen.iter().map(|s| s.event_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!((seen.len(), ids.len()), (events, events));
    assert!(
        done.iter()
            .all(|(status, attempts, _)| status == "succeeded" && *attempts == 1)
    );
}
