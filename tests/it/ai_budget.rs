//! AI responses under a distributor's monthly budget (seed 003).

use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::on_both_backends;
use crate::distribution::{distributor, member, person, user_errors};
use crate::messages::{RECEIVE, whatsapp};

pub const RECORD: &str = "mutation($i: AiResponseRecordInput!) { aiResponseRecord(input: $i) { aiResponse { id rowId cost confidence } userErrors { field code message } } }";

/// A new inbound message to `distributor`: its global id.
pub async fn message(app: &TestApp, distributor: &str, external_id: &str, body: &str) -> String {
    let reply = app
        .query(
            RECEIVE,
            whatsapp(distributor, external_id, "+447700900123", body),
        )
        .await;
    reply.data()["messageReceive"]["message"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// `aiResponseRecord` input for `message` at `cost`.
pub fn response(message: &str, cost: &str, extracted: Value) -> Value {
    json!({ "i": { "messageId": message, "extractedData": extracted, "confidence": "0.92",
        "model": "gpt-4o-mini", "promptTokens": 120, "completionTokens": 30, "cost": cost } })
}

on_both_backends! {
    async fn responses_past_the_budget_are_refused_and_each_alert_fires_once(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "admin").await;
        let set = app.graphql(Some(&owner.token),
            "mutation($id: ID!) { distributorUpdate(id: $id, input: {aiMonthlyBudget: \"10.00\"}) { distributor { aiMonthlyBudget } userErrors { code } } }",
            json!({ "id": gid })).await;
        let by_admin = app.graphql(Some(&staff.token),
            "mutation($id: ID!) { distributorUpdate(id: $id, input: {aiMonthlyBudget: \"99.00\"}) { distributor { aiMonthlyBudget } userErrors { code } } }",
            json!({ "id": gid })).await;
        let mut messages = Vec::new();
        for i in 0..5 {
            messages.push(message(&app, &gid, &format!("wamid.{i}"), "2 boxes of apples").await);
        }

        let mut replies = Vec::new();
        for m in &messages[..4] {
            replies.push(app.query(RECORD, response(m, "4", json!({ "items": [] }))).await);
        }
        let again = app.query(RECORD, response(&messages[0], "1", json!({}))).await;
        let by_user = app.graphql(Some(&owner.token), RECORD, response(&messages[4], "0", json!({}))).await;
        let bad = app.query(RECORD, json!({ "i": { "messageId": messages[4], "confidence": "1.5", "model": "m", "promptTokens": 1, "completionTokens": 1, "cost": "0" } })).await;

        assert!(set.data()["distributorUpdate"]["distributor"].is_object(), "{}", set.body);
        assert!(by_admin.data()["distributorUpdate"]["distributor"].is_null(), "{}", by_admin.body);
        for reply in &replies[..3] {
            assert!(reply.data()["aiResponseRecord"]["aiResponse"].is_object(), "{}", reply.body);
        }
        let refusal = &user_errors(&replies[3], "aiResponseRecord")[0];
        assert_eq!(refusal["code"], "BUDGET_EXCEEDED", "{}", replies[3].body);
        assert_eq!(user_errors(&again, "aiResponseRecord")[0]["code"], "INVALID_TRANSITION", "{}", again.body);
        assert_eq!(by_user.code(), "FORBIDDEN");
        assert_eq!(user_errors(&bad, "aiResponseRecord")[0]["field"], json!(["input", "confidence"]));
        let usage = app.query("{ aiUsageMetrics { nodes { requests promptTokens completionTokens cost model feature } } messages(filter: {aiProcessed: {eq: true}}) { totalCount } }", json!({})).await;
        let row = &usage.data()["aiUsageMetrics"]["nodes"][0];
        assert_eq!(row["requests"], 3, "{}", usage.body);
        assert_eq!(row["cost"].as_str().unwrap().parse::<f64>().unwrap(), 12.0);
        assert_eq!(usage.data()["messages"]["totalCount"], 3);
        let notes = app.graphql(Some(&owner.token), "{ notifications(orderBy: [{field: CREATED_AT}]) { nodes { title data } } }", json!({})).await;
        let titles: Vec<&str> = notes.data()["notifications"]["nodes"].as_array().unwrap()
            .iter().filter_map(|n| n["title"].as_str()).filter(|t| t.starts_with("AI budget")).collect();
        assert_eq!(titles, ["AI budget almost spent", "AI budget spent"], "{}", notes.body);
        // The admin is no owner: told nothing.
        let admin_notes = app.graphql(Some(&staff.token), "{ notifications { totalCount } }", json!({})).await;
        assert_eq!(admin_notes.data()["notifications"]["totalCount"], 0);
    }
}
