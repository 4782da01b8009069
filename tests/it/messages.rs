//! Messages to a distributor (seed 003): stored once per external id, counted by the
//! database, PII found and masked, heard by subscribers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::app::TestApp;
use crate::common::on_both_backends;
use crate::common::server::{Client, Server};
use crate::distribution::{distributor, member, person, user_errors};

pub const RECEIVE: &str = "mutation($i: MessageReceiveInput!) { messageReceive(input: $i) { message { id rowId body bodyRedacted direction customerId } conversation { id unreadCount lastMessageAt customerId } duplicate userErrors { field code message } } }";
const SEND: &str = "mutation($i: MessageSendInput!) { messageSend(input: $i) { message { direction status body } userErrors { field code message } } }";
const MARK_READ: &str = "mutation($i: ConversationMarkReadInput!) { conversationMarkRead(input: $i) { conversation { unreadCount } userErrors { field code message } } }";

/// An inbound WhatsApp message to `distributor` from `from`.
pub fn whatsapp(distributor: &str, external_id: &str, from: &str, body: &str) -> Value {
    json!({ "i": { "distributorId": distributor, "channel": "whatsapp", "externalId": external_id, "from": from, "senderName": "Bob", "body": body } })
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    app.t.query(sql, vec![]).await[0]
        .try_get_by_index::<i64>(0)
        .unwrap()
}

on_both_backends! {
    async fn an_inbound_message_is_stored_once_with_its_customer_conversation_and_counts(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        let viewer = member(&app, &owner, "viewer@example.com", "viewer").await;

        let first = app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+44 7700 900123", "2 boxes please")).await;
        let retry = app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+44 7700 900123", "2 boxes please")).await;
        let second = app.query(RECEIVE, whatsapp(&gid, "wamid.2", "+447700900123", "and 1 crate")).await;
        let conversation = first.data()["messageReceive"]["conversation"]["id"].as_str().unwrap().to_owned();
        let by_viewer = app.graphql(Some(&viewer.token), SEND, json!({ "i": { "conversationId": conversation, "body": "hi" } })).await;
        let sent = app.graphql(Some(&staff.token), SEND, json!({ "i": { "conversationId": conversation, "body": "On its way" } })).await;
        let read = app.graphql(Some(&staff.token), MARK_READ, json!({ "i": { "conversationId": conversation } })).await;

        let made = &first.data()["messageReceive"];
        assert_eq!(made["duplicate"], false, "{}", first.body);
        assert_eq!(made["conversation"]["unreadCount"], 1);
        assert!(made["conversation"]["lastMessageAt"].is_string());
        assert_eq!(made["message"]["customerId"], made["conversation"]["customerId"]);
        assert_eq!(retry.data()["messageReceive"]["duplicate"], true);
        assert_eq!(retry.data()["messageReceive"]["message"]["rowId"], made["message"]["rowId"]);
        assert_eq!(second.data()["messageReceive"]["conversation"]["id"], conversation.as_str());
        assert_eq!(second.data()["messageReceive"]["conversation"]["unreadCount"], 2);
        assert_eq!(scalar(&app, "SELECT count(*) FROM customers").await, 1);
        assert_eq!(scalar(&app, "SELECT count(*) FROM messages").await, 2 + 1);
        assert!(by_viewer.data()["messageSend"]["message"].is_null(), "{}", by_viewer.body);
        assert_eq!(sent.data()["messageSend"]["message"]["status"], "queued", "{}", sent.body);
        assert_eq!(read.data()["conversationMarkRead"]["conversation"]["unreadCount"], 0, "{}", read.body);
        // A row inserted by SQL is counted by the database too.
        let row = app.t.query("SELECT conversation_id, distributor_id FROM messages LIMIT 1", vec![]).await;
        let (conv, dist): (uuid::Uuid, uuid::Uuid) = (row[0].try_get_by_index(0).unwrap(), row[0].try_get_by_index(1).unwrap());
        crate::common::fixtures::row(&app.t.db, "messages", vec![
            ("conversation_id", conv.into()), ("direction", "inbound".into()), ("channel", "whatsapp".into()),
            ("body", "by sql".into()), ("distributor_id", dist.into()),
        ]).await;
        assert_eq!(scalar(&app, "SELECT CAST(unread_count AS BIGINT) FROM conversations").await, 1);
    }

    async fn first_messages_from_a_new_sender_at_once_make_one_customer(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;

        let app = &app;
        let replies = futures_util::future::join_all((0..12).map(|i| {
            let sms = json!({ "i": { "distributorId": gid, "channel": "sms", "externalId": format!("sms.{i}"), "from": "+447700900555", "body": format!("order {i}") } });
            let email = json!({ "i": { "distributorId": gid, "channel": "email", "externalId": format!("mail.{i}"), "from": "Bob@Example.com", "body": format!("order {i}") } });
            async move { tokio::join!(app.query(RECEIVE, sms), app.query(RECEIVE, email)) }
        }))
        .await;

        for (sms, email) in &replies {
            assert_eq!(sms.data()["messageReceive"]["duplicate"], false, "{}", sms.body);
            assert_eq!(email.data()["messageReceive"]["duplicate"], false, "{}", email.body);
        }
        assert_eq!(scalar(app, "SELECT count(*) FROM customers").await, 2);
        assert_eq!(scalar(app, "SELECT count(*) FROM conversations").await, 2);
        assert_eq!(scalar(app, "SELECT CAST(sum(unread_count) AS BIGINT) FROM conversations").await, 24);
    }

    async fn pii_in_a_message_is_recorded_and_masked(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;

        let reply = app.query(RECEIVE, whatsapp(&gid, "wamid.9",
            "+15550100", "Call +1 415 555 0100, card 4111 1111 1111 1111, not 4111 1111 1111 1112, mail a@b.co")).await;

        let message = &reply.data()["messageReceive"]["message"];
        assert_eq!(message["bodyRedacted"], "Call [PHONE], card [CARD], not 4111 1111 1111 1112, mail [EMAIL]", "{}", reply.body);
        let found = app.query("{ piiDetections(orderBy: [{field: CREATED_AT}]) { nodes { kind location redacted messageId } } }", json!({})).await;
        let mut kinds: Vec<String> = found.data()["piiDetections"]["nodes"].as_array().unwrap()
            .iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect();
        kinds.sort();
        assert_eq!(kinds, ["credit_card", "email", "phone"]);
        let card = found.data()["piiDetections"]["nodes"].as_array().unwrap().iter()
            .find(|n| n["kind"] == "credit_card").unwrap().clone();
        assert_eq!(card["location"], json!({ "field": "body", "start": 27, "end": 46 }));
    }

    async fn bad_messages_and_other_distributors_conversations_are_refused(t) {
        let app = TestApp::new(t).await;
        let ada = person(&app, "ada@example.com").await;
        let bob = person(&app, "bob@example.com").await;
        let (ada_gid, _) = distributor(&app, &ada, "Ada's").await;
        distributor(&app, &bob, "Bob's").await;
        let first = app.query(RECEIVE, whatsapp(&ada_gid, "wamid.1", "+447700900123", "hello")).await;
        let conversation = first.data()["messageReceive"]["conversation"]["id"].clone();

        let by_user = app.graphql(Some(&ada.token), RECEIVE, whatsapp(&ada_gid, "wamid.2", "+447700900123", "hi")).await;
        let bad_channel = app.query(RECEIVE, json!({ "i": { "distributorId": ada_gid, "channel": "fax", "externalId": "x", "from": "+447700900123", "body": "b" } })).await;
        let bad_phone = app.query(RECEIVE, whatsapp(&ada_gid, "wamid.3", "call me", "hi")).await;
        let empty = app.query(RECEIVE, whatsapp(&ada_gid, "wamid.4", "+447700900123", "  ")).await;
        let into_ada = app.graphql(Some(&bob.token), SEND, json!({ "i": { "conversationId": conversation, "body": "mine now" } })).await;
        let read_ada = app.graphql(Some(&bob.token), MARK_READ, json!({ "i": { "conversationId": conversation } })).await;

        assert_eq!(by_user.code(), "FORBIDDEN", "{}", by_user.body);
        assert_eq!(user_errors(&bad_channel, "messageReceive")[0]["field"], json!(["input", "channel"]), "{}", bad_channel.body);
        assert_eq!(user_errors(&bad_phone, "messageReceive")[0]["field"], json!(["input", "from"]));
        assert_eq!(user_errors(&empty, "messageReceive")[0]["field"], json!(["input", "body"]));
        assert_eq!(user_errors(&into_ada, "messageSend")[0]["code"], "NOT_FOUND", "{}", into_ada.body);
        assert_eq!(user_errors(&read_ada, "conversationMarkRead")[0]["code"], "NOT_FOUND");
        assert_eq!(scalar(&app, "SELECT count(*) FROM messages").await, 1);
        assert_eq!(scalar(&app, "SELECT CAST(unread_count AS BIGINT) FROM conversations").await, 1);
    }

    async fn a_message_received_subscriber_hears_the_message(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let first = app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+447700900123", "hello")).await;
        let conversation = first.data()["messageReceive"]["conversation"]["id"].as_str().unwrap().to_owned();
        let server = Server::start(app.t.db.clone()).await;
        let mut client = Client::connect(server.addr, false).await;
        client.init(&owner.token).await;
        client.subscribe("m", "subscription($id: ID!) { messageReceived(conversationId: $id) { op node { ... on Message { body direction } } } }", json!({ "id": conversation })).await;
        server.subscribed(1).await;

        let second = server.post(&TestApp::service(), &format!(
            "mutation {{ messageReceive(input: {{distributorId: \"{gid}\", channel: \"whatsapp\", externalId: \"wamid.2\", from: \"+447700900123\", body: \"second\"}}) {{ message {{ id }} }} }}")).await;
        assert!(second["errors"].is_null(), "{second}");

        let event = client.until("m", Duration::from_secs(10), |e| e["data"]["messageReceived"]["node"]["body"] == "second").await;
        assert_eq!(event["data"]["messageReceived"]["node"]["direction"], "inbound");
    }
}
