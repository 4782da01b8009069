//! The distributor platform end to end (seed 003), on a real port: a distributor, an
//! invited member, an inbound WhatsApp message with PII heard by a subscriber, the AI's
//! response made into an order from the catalog, and the order's webhook delivered signed
//! after two failures. A viewer writes nothing; another distributor sees nothing.

use std::time::Duration;

use api::domains::distribution::delivery::Deliverer;
use serde_json::{Value, json};

use crate::ai_budget::{RECORD, response};
use crate::common::app::{TestApp, encryption};
use crate::common::on_both_backends;
use crate::common::server::{Client, Server};
use crate::distribution::{distributor, member, person, user_errors};
use crate::distributor_webhooks::{Answer, Receiver, app, config, endpoint, settled, verifies};
use crate::messages::{RECEIVE, whatsapp};

const FROM_AI: &str = "mutation($i: OrderCreateFromAiResponseInput!) { orderCreateFromAiResponse(input: $i) { order { rowId status totalAmount } userErrors { field code message } } }";
const SEEN_BY_OTHERS: &str = "{ customers { totalCount } conversations { totalCount } messages { totalCount } piiDetections { totalCount } aiResponses { totalCount } orders { totalCount } webhookEndpoints { totalCount } webhookDeliveries { totalCount } dataAccessAudits { totalCount } }";

/// Every count of `SEEN_BY_OTHERS` as `token` reads it, by field.
async fn counts(app: &TestApp, token: &str) -> Vec<(String, i64)> {
    let reply = app.graphql(Some(token), SEEN_BY_OTHERS, json!({})).await;
    let data = reply.data().as_object().unwrap().clone();
    data.into_iter()
        .map(|(k, v)| (k, v["totalCount"].as_i64().unwrap()))
        .collect()
}

on_both_backends! {
    async fn a_whatsapp_order_goes_from_message_to_signed_webhook(t) {
        let app = app(t).await;
        let options = api::state::Options { webhooks_allow_loopback: true, ..Default::default() };
        let server = Server::start_with(app.t.db.clone(), options).await;
        let owner = person(&app, "owner@example.com").await;
        let stranger = person(&app, "stranger@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme Foods").await;
        distributor(&app, &stranger, "Other Foods").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        let viewer = member(&app, &owner, "viewer@example.com", "viewer").await;
        let product = app.graphql(Some(&owner.token),
            "mutation { catalogProductCreate(input: {sku: \"APL-1\", name: \"Red Apples\", price: \"2.50\"}) { catalogProduct { id } } }", json!({})).await;
        assert!(product.data()["catalogProductCreate"]["catalogProduct"].is_object(), "{}", product.body);
        let mut receiver = Receiver::start(|n| if n < 2 { Answer::Status(500) } else { Answer::Status(200) }, Duration::ZERO).await;
        let (_, secret) = endpoint(&app, &owner.token, &receiver.url, &["order.created"]).await;

        // The customer writes first; the member's app subscribes to the conversation.
        let hello = server.post(&TestApp::service(), &format!(
            "mutation {{ messageReceive(input: {{distributorId: \"{gid}\", channel: \"whatsapp\", externalId: \"wamid.1\", from: \"+44 7700 900123\", body: \"hello\"}}) {{ conversation {{ id }} }} }}")).await;
        let conversation = hello["data"]["messageReceive"]["conversation"]["id"].as_str().unwrap().to_owned();
        let mut client = Client::connect(server.addr, false).await;
        client.init(&staff.token).await;
        client.subscribe("m", "subscription($id: ID!) { messageReceived(conversationId: $id) { node { ... on Message { body bodyRedacted } } } }", json!({ "id": conversation })).await;
        server.subscribed(1).await;

        // The order: a phone number and a card number in it.
        let text = "2 Red Apples please, call +44 7700 900456, card 4111 1111 1111 1111";
        let order_message = server.graphql(Some(&TestApp::service()), RECEIVE, whatsapp(&gid, "wamid.2", "+44 7700 900123", text)).await;
        let message = order_message["data"]["messageReceive"]["message"]["id"].as_str().unwrap().to_owned();
        let heard = client.until("m", Duration::from_secs(10), |e| e["data"]["messageReceived"]["node"]["bodyRedacted"].as_str().is_some_and(|b| b.contains("[CARD]"))).await;
        let node = &heard["data"]["messageReceived"]["node"];
        assert_eq!(node["body"], "2 Red Apples please, call [PHONE], card [CARD]", "the member hears it redacted: {heard}");

        // PII recorded; the member reads the body redacted, the owner in full.
        let pii = app.graphql(Some(&owner.token), "{ piiDetections { nodes { kind } } }", json!({})).await;
        let mut kinds: Vec<String> = pii.data()["piiDetections"]["nodes"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect();
        kinds.sort();
        assert_eq!(kinds, ["credit_card", "phone"]);
        let body_of = |reply: &crate::common::app::Reply| reply.data()["node"]["body"].clone();
        let read = "query($id: ID!) { node(id: $id) { ... on Message { body } } }";
        assert_eq!(body_of(&app.graphql(Some(&staff.token), read, json!({ "id": message })).await), node["body"]);
        assert_eq!(body_of(&app.graphql(Some(&owner.token), read, json!({ "id": message })).await), text);

        // The AI's reading of it, and the order made from it by the member.
        let recorded = app.query(RECORD, response(&message, "0.02", json!({ "items": [{ "sku": "APL-1", "quantity": 2 }] }))).await;
        let ai = recorded.data()["aiResponseRecord"]["aiResponse"]["id"].clone();
        let by_viewer = app.graphql(Some(&viewer.token), FROM_AI, json!({ "i": { "aiResponseId": ai } })).await;
        assert!(by_viewer.data()["orderCreateFromAiResponse"]["order"].is_null(), "{}", by_viewer.body);
        let made = app.graphql(Some(&staff.token), FROM_AI, json!({ "i": { "aiResponseId": ai } })).await;
        let order = &made.data()["orderCreateFromAiResponse"]["order"];
        assert_eq!(order["status"], "draft", "{}", made.body);
        assert_eq!(order["totalAmount"].as_str().unwrap().parse::<f64>().unwrap(), 5.0);

        // Its webhook: refused twice by the receiver, accepted on the third attempt, signed.
        let deliverer = Deliverer::start(app.t.db.clone(), encryption(), config(Duration::from_secs(2)));
        let seen = receiver.requests(3).await;
        let done = settled(&app.t).await;
        deliverer.stop().await;
        assert_eq!(seen.iter().map(|s| s.answer).collect::<Vec<_>>(), [Answer::Status(500), Answer::Status(500), Answer::Status(200)]);
        assert!(verifies(&secret, &seen[2].signature, &seen[2].body));
        let event: Value = serde_json::from_slice(&seen[2].body).unwrap();
        assert_eq!(event["type"], "order.created");
        assert_eq!(event["data"]["order_id"], order["rowId"], "{event}");
        assert_eq!((done[0].0.as_str(), done[0].1), ("succeeded", 3));

        // A viewer writes nothing; the other distributor saw nothing at any step.
        let viewer_writes = app.graphql(Some(&viewer.token), "mutation { customerCreate(input: {name: \"V\"}) { userErrors { code } } }", json!({})).await;
        assert!(!user_errors(&viewer_writes, "customerCreate").as_array().unwrap().is_empty(), "{}", viewer_writes.body);
        app.audits.flush(&app.t.db).await.unwrap();
        let owners = counts(&app, &owner.token).await;
        assert!(owners.iter().all(|(_, n)| *n > 0), "{owners:?}");
        let strangers = counts(&app, &stranger.token).await;
        assert!(strangers.iter().all(|(_, n)| *n == 0), "{strangers:?}");
        let peek = app.graphql(Some(&stranger.token), read, json!({ "id": message })).await;
        assert!(peek.data()["node"].is_null(), "{}", peek.body);
    }
}
