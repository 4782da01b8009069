//! External integrations' API keys: a channel bridge delivers inbound messages to its own
//! distributor with its key, and can do nothing else.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::common::app::{Reply, TestApp};
use crate::common::on_both_backends;
use crate::distribution::{distributor, member, person, user_errors};

const ISSUE: &str = "mutation($id: ID!) { externalIntegrationKeyIssue(input: {integrationId: $id}) { key externalIntegration { provider } userErrors { field code } } }";
const RECEIVE: &str = "mutation($i: MessageReceiveInput!) { messageReceive(input: $i) { duplicate message { id } userErrors { field code } } }";

/// A request with integration key `key`.
async fn with_key(app: &TestApp, key: &str, query: &str, variables: Value) -> Reply {
    let body = json!({ "query": query, "variables": variables }).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

fn sms(external_id: &str, distributor: Option<&str>) -> Value {
    json!({ "i": { "channel": "sms", "externalId": external_id, "from": "+447700900123", "body": "2 crates", "distributorId": distributor } })
}

async fn messages_of(app: &TestApp, distributor: uuid::Uuid) -> i64 {
    let reply = app
        .query(
            "query($d: UUID!) { messages(filter: {distributorId: {eq: $d}}) { totalCount } }",
            json!({ "d": distributor }),
        )
        .await;
    reply.data()["messages"]["totalCount"].as_i64().unwrap()
}

on_both_backends! {
    async fn an_integration_key_delivers_messages_to_its_own_distributor_only(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let bob = person(&app, "bob@example.com").await;
        let (_, acme) = distributor(&app, &owner, "Acme").await;
        let (bobs_gid, bobs) = distributor(&app, &bob, "Bob's").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        let made = app.graphql(Some(&owner.token), "mutation { externalIntegrationCreate(input: {provider: \"twilio\", config: {}}) { externalIntegration { id } } }", json!({})).await;
        let integration = made.data()["externalIntegrationCreate"]["externalIntegration"]["id"].clone();

        let by_member = app.graphql(Some(&staff.token), ISSUE, json!({ "id": integration })).await;
        let by_stranger = app.graphql(Some(&bob.token), ISSUE, json!({ "id": integration })).await;
        let issued = app.graphql(Some(&owner.token), ISSUE, json!({ "id": integration })).await;
        assert_eq!(by_member.code(), "FORBIDDEN", "{}", by_member.body);
        assert_eq!(user_errors(&by_stranger, "externalIntegrationKeyIssue")[0]["code"], "NOT_FOUND", "{}", by_stranger.body);
        let key = issued.data()["externalIntegrationKeyIssue"]["key"].as_str().unwrap().to_owned();
        assert!(key.starts_with("ik_"));

        let first = with_key(&app, &key, RECEIVE, sms("sms.1", None)).await;
        let retry = with_key(&app, &key, RECEIVE, sms("sms.1", None)).await;
        let elsewhere = with_key(&app, &key, RECEIVE, sms("sms.2", Some(&bobs_gid))).await;
        assert_eq!(first.data()["messageReceive"]["duplicate"], false, "{}", first.body);
        // It reads nothing, not even what it delivered.
        assert!(first.data()["messageReceive"]["message"].is_null());
        assert_eq!(retry.data()["messageReceive"]["duplicate"], true);
        assert_eq!(user_errors(&elsewhere, "messageReceive")[0], json!({ "field": ["input", "distributorId"], "code": "NOT_FOUND" }), "{}", elsewhere.body);
        assert_eq!(messages_of(&app, acme).await, 1);
        assert_eq!(messages_of(&app, bobs).await, 0);

        let read = with_key(&app, &key, "{ messages { totalCount } customers { totalCount } }", json!({})).await;
        let write = with_key(&app, &key, "mutation { customerCreate(input: {name: \"Eve\"}) { customer { id } } }", json!({})).await;
        assert_eq!(read.data()["messages"]["totalCount"], 0, "{}", read.body);
        assert_eq!(read.data()["customers"]["totalCount"], 0);
        assert_eq!(write.code(), "FORBIDDEN", "{}", write.body);

        // A new key replaces the old; a disabled integration's key is refused.
        let again = app.graphql(Some(&owner.token), ISSUE, json!({ "id": integration })).await;
        let new_key = again.data()["externalIntegrationKeyIssue"]["key"].as_str().unwrap().to_owned();
        let old = with_key(&app, &key, RECEIVE, sms("sms.3", None)).await;
        assert_eq!(old.code(), "UNAUTHENTICATED", "{}", old.body);
        let new = with_key(&app, &new_key, RECEIVE, sms("sms.3", None)).await;
        assert_eq!(new.data()["messageReceive"]["duplicate"], false, "{}", new.body);
        app.graphql(Some(&owner.token), "mutation($id: ID!) { externalIntegrationUpdate(id: $id, input: {status: \"disabled\"}) { externalIntegration { status } } }", json!({ "id": integration })).await;
        let disabled = with_key(&app, &new_key, RECEIVE, sms("sms.4", None)).await;
        assert_eq!(disabled.code(), "UNAUTHENTICATED", "{}", disabled.body);
        assert_eq!(messages_of(&app, acme).await, 2);
    }
}
