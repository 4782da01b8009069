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
        crate::distributor_webhooks::endpoint(&app, &owner.token, "https://hooks.example.com/ai", &["budget.exceeded"]).await;
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
        // And a `budget.exceeded` webhook event at 80% and at 100%, once each.
        let events = app.t.query("SELECT payload FROM webhook_deliveries", vec![]).await;
        let mut thresholds: Vec<f64> = events.iter()
            .map(|r| r.try_get_by_index::<Value>(0).unwrap())
            .inspect(|p| assert_eq!(p["type"], "budget.exceeded", "{p}"))
            .map(|p| p["data"]["threshold"].as_str().unwrap().parse().unwrap())
            .collect();
        thresholds.sort_by(f64::total_cmp);
        assert_eq!(thresholds, [0.8, 1.0], "{thresholds:?}");
        // The admin is no owner: told nothing.
        let admin_notes = app.graphql(Some(&staff.token), "{ notifications { totalCount } }", json!({})).await;
        assert_eq!(admin_notes.data()["notifications"]["totalCount"], 0);
    }
}

const FROM_AI: &str = "mutation($i: OrderCreateFromAiResponseInput!) { orderCreateFromAiResponse(input: $i) { order { id status totalAmount source orderProducts { nodes { sku productName quantity unitPrice lineTotal } } } userErrors { field code message } } }";
const STATUS: &str = "mutation($i: OrderUpdateStatusInput!) { orderUpdateStatus(input: $i) { order { status } userErrors { field code message } } }";

/// The global id of the AI response `message` got, for `items` at `confidence`.
async fn ai_response(app: &TestApp, message: &str, confidence: &str, items: Value) -> String {
    let mut input = response(message, "0.01", json!({ "items": items }));
    input["i"]["confidence"] = json!(confidence);
    let reply = app.query(RECORD, input).await;
    reply.data()["aiResponseRecord"]["aiResponse"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}", reply.body))
        .to_owned()
}

on_both_backends! {
    async fn an_order_is_made_from_an_ai_response_and_moves_by_its_state_machine(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let viewer = member(&app, &owner, "viewer@example.com", "viewer").await;
        for (sku, name, price) in [("APL-1", "Red Apples", "2.50"), ("BAN-1", "Bananas", "1.20")] {
            let made = app.graphql(Some(&owner.token),
                "mutation($i: CatalogProductCreateInput!) { catalogProductCreate(input: $i) { catalogProduct { id } userErrors { code } } }",
                json!({ "i": { "sku": sku, "name": name, "price": price } })).await;
            assert!(made.data()["catalogProductCreate"]["catalogProduct"].is_object(), "{}", made.body);
        }
        let sure = ai_response(&app, &message(&app, &gid, "w1", "2 apples, 3 bananas").await, "0.92",
            json!([{ "sku": "APL-1", "quantity": 2 }, { "name": "  BANANAS ", "quantity": "3" }])).await;
        let unsure = ai_response(&app, &message(&app, &gid, "w2", "some apples?").await, "0.5",
            json!([{ "name": "red apples", "quantity": 1 }])).await;
        let unknown = ai_response(&app, &message(&app, &gid, "w3", "pears").await, "0.99",
            json!([{ "sku": "APL-1", "quantity": 1 }, { "sku": "PEAR-9", "name": "Pears", "quantity": 1 }])).await;

        let by_viewer = app.graphql(Some(&viewer.token), FROM_AI, json!({ "i": { "aiResponseId": sure } })).await;
        let made = app.graphql(Some(&owner.token), FROM_AI, json!({ "i": { "aiResponseId": sure } })).await;
        let twice = app.graphql(Some(&owner.token), FROM_AI, json!({ "i": { "aiResponseId": sure } })).await;
        let review = app.graphql(Some(&owner.token), FROM_AI, json!({ "i": { "aiResponseId": unsure } })).await;
        let missing = app.graphql(Some(&owner.token), FROM_AI, json!({ "i": { "aiResponseId": unknown } })).await;
        let order = made.data()["orderCreateFromAiResponse"]["order"]["id"].clone();
        let mut moves = Vec::new();
        for status in ["confirmed", "delivered", "fulfilled", "delivered", "cancelled"] {
            let reply = app.graphql(Some(&owner.token), STATUS, json!({ "i": { "id": order, "status": status } })).await;
            moves.push(reply);
        }

        assert!(by_viewer.data()["orderCreateFromAiResponse"]["order"].is_null(), "{}", by_viewer.body);
        let made = &made.data()["orderCreateFromAiResponse"]["order"];
        assert_eq!(made["status"], "draft");
        assert_eq!(made["source"], "ai");
        assert_eq!(made["totalAmount"].as_str().unwrap().parse::<f64>().unwrap(), 8.6);
        let lines = made["orderProducts"]["nodes"].as_array().unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().any(|l| l["sku"] == "BAN-1" && l["productName"] == "Bananas"));
        assert_eq!(user_errors(&twice, "orderCreateFromAiResponse")[0]["code"], "INVALID_TRANSITION");
        assert_eq!(review.data()["orderCreateFromAiResponse"]["order"]["status"], "needs_review", "{}", review.body);
        let refusal = &user_errors(&missing, "orderCreateFromAiResponse")[0];
        assert_eq!(refusal["code"], "NOT_FOUND", "{}", missing.body);
        assert!(refusal["message"].as_str().unwrap().contains("PEAR-9"));
        let statuses: Vec<Value> = moves.iter().map(|r| r.data()["orderUpdateStatus"]["order"]["status"].clone()).collect();
        assert_eq!(statuses, [json!("confirmed"), Value::Null, json!("fulfilled"), json!("delivered"), Value::Null]);
        assert_eq!(user_errors(&moves[1], "orderUpdateStatus")[0]["code"], "INVALID_TRANSITION");
        let counts = app.query("{ orders { totalCount } orderProducts { totalCount } }", json!({})).await;
        assert_eq!(counts.data()["orders"]["totalCount"], 2);
        assert_eq!(counts.data()["orderProducts"]["totalCount"], 3);
    }
}
