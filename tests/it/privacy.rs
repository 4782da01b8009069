//! Privacy in the distributor platform (seed 003): message bodies with PII served in full
//! only to admins and owners, and the data access audit trail.

use serde_json::json;

use crate::common::app::TestApp;
use crate::common::{fixtures, on_both_backends};
use crate::distribution::{distributor, member, person, user_errors};
use crate::messages::{RECEIVE, whatsapp};

const BODIES: &str =
    "{ messages(orderBy: [{field: CREATED_AT}]) { nodes { rowId body bodyRedacted } } }";
const CARD: &str = "card 4111 1111 1111 1111 please";
const MASKED: &str = "card [CARD] please";

/// The audits written so far: (action, table, user, reason).
async fn audits(app: &TestApp) -> Vec<(String, String, Option<uuid::Uuid>, serde_json::Value)> {
    app.audits.flush(&app.t.db).await.unwrap();
    app.t
        .query("SELECT action, table_name, user_id, details FROM data_access_audits ORDER BY created_at", vec![])
        .await
        .iter()
        .map(|r| {
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                r.try_get_by_index(2).unwrap(),
                r.try_get_by_index(3).unwrap(),
            )
        })
        .collect()
}

on_both_backends! {
    async fn only_admins_and_owners_read_a_full_body_and_each_such_read_is_audited(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, _) = distributor(&app, &owner, "Acme").await;
        let admin = member(&app, &owner, "admin@example.com", "admin").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;
        let viewer = member(&app, &owner, "viewer@example.com", "viewer").await;
        let with_pii = app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+447700900123", CARD)).await;
        app.query(RECEIVE, whatsapp(&gid, "wamid.2", "+447700900123", "no secrets here")).await;
        let message = with_pii.data()["messageReceive"]["message"]["rowId"].as_str().unwrap().to_owned();
        let before = audits(&app).await;

        for (who, body) in [(&viewer, MASKED), (&staff, MASKED), (&admin, CARD), (&owner, CARD)] {
            let reply = app.graphql(Some(&who.token), BODIES, json!({})).await;
            let nodes = &reply.data()["messages"]["nodes"];
            assert_eq!(nodes[0]["body"], body, "{}", reply.body);
            assert_eq!(nodes[0]["bodyRedacted"], MASKED);
            assert_eq!(nodes[1]["body"], "no secrets here");
        }
        // The same through `node`, and twice through the compiled-plan path's document.
        let node = app.graphql(Some(&staff.token), "query($id: ID!) { node(id: $id) { ... on Message { body } } }",
            json!({ "id": with_pii.data()["messageReceive"]["message"]["id"] })).await;
        assert_eq!(node.data()["node"]["body"], MASKED, "{}", node.body);
        let again = app.graphql(Some(&staff.token), BODIES, json!({})).await;
        assert_eq!(again.data()["messages"]["nodes"][0]["body"], MASKED);

        // The full body can be neither filtered nor sorted on: it cannot be probed.
        let probe = app.graphql(Some(&staff.token), "{ messages(filter: {body: {like: \"%4111%\"}}) { totalCount } }", json!({})).await;
        let sort = app.graphql(Some(&staff.token), "{ messages(orderBy: [{field: BODY}]) { totalCount } }", json!({})).await;
        assert!(probe.body["errors"].is_array(), "{}", probe.body);
        assert!(sort.body["errors"].is_array(), "{}", sort.body);

        // Two full reads of the body with PII (the admin's and the owner's), nothing else.
        let reads: Vec<_> = audits(&app).await.into_iter().skip(before.len()).collect();
        assert_eq!(reads.len(), 2, "{reads:?}");
        for (action, table, user, details) in &reads {
            assert_eq!((action.as_str(), table.as_str()), ("read", "messages"));
            assert!([Some(admin.id), Some(owner.id)].contains(user), "{reads:?}");
            assert!(details["reason"].as_str().unwrap().contains("messages.nodes.0.body"), "{details}");
        }
        let records: Vec<uuid::Uuid> = app.t.query("SELECT record_id FROM data_access_audits WHERE action = 'read'", vec![]).await
            .iter().map(|r| r.try_get_by_index(0).unwrap()).collect();
        assert!(records.iter().all(|r| r.to_string() == message), "{records:?}");
    }

    async fn every_change_of_a_customer_is_audited_and_old_audits_follow_the_retention(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        let (gid, distributor_id) = distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;

        app.query(RECEIVE, whatsapp(&gid, "wamid.1", "+447700900123", "hello")).await;
        let made = app.graphql(Some(&staff.token), "mutation NewCustomer { customerCreate(input: {name: \"Bob\"}) { customer { id } } }", json!({})).await;
        let id = made.data()["customerCreate"]["customer"]["id"].clone();
        app.graphql(Some(&staff.token), "mutation Rename($id: ID!) { customerUpdate(id: $id, input: {name: \"Robert\"}) { customer { name } } }", json!({ "id": id })).await;
        app.graphql(Some(&staff.token), "mutation Drop($id: ID!) { customerDelete(id: $id) { deletedId } }", json!({ "id": id })).await;
        // A refused write changes nothing and is not audited.
        let refused = app.graphql(Some(&staff.token), "mutation { customerCreate(input: {name: \"Eve\", riskScore: 101}) { userErrors { code } } }", json!({})).await;
        assert_eq!(user_errors(&refused, "customerCreate")[0]["code"], "INVALID", "{}", refused.body);

        let trail = audits(&app).await;
        let summary: Vec<(&str, Option<uuid::Uuid>, &str)> = trail.iter()
            .map(|(a, _, u, d)| (a.as_str(), *u, d["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(summary, [
            ("create", None, "GraphQL operation unnamed"),
            ("create", Some(staff.id), "GraphQL operation NewCustomer"),
            ("update", Some(staff.id), "GraphQL operation Rename"),
            ("delete", Some(staff.id), "GraphQL operation Drop"),
        ]);

        // Retention: 30 days for this distributor (a bad value is refused).
        let set = "mutation($id: ID!, $s: JSON!) { distributorUpdate(id: $id, input: {settings: $s}) { distributor { settings } userErrors { field code message } } }";
        let bad = app.graphql(Some(&owner.token), set, json!({ "id": gid, "s": { "audit_retention_days": 0 } })).await;
        assert_eq!(user_errors(&bad, "distributorUpdate")[0]["code"], "INVALID", "{}", bad.body);
        let good = app.graphql(Some(&owner.token), set, json!({ "id": gid, "s": { "audit_retention_days": 30 } })).await;
        assert!(user_errors(&good, "distributorUpdate").as_array().unwrap().is_empty(), "{}", good.body);
        for days in [40, 20] {
            fixtures::row(&app.t.db, "data_access_audits", vec![
                ("action", "read".into()), ("table_name", "messages".into()),
                ("created_at", (chrono::Utc::now() - chrono::Duration::days(days)).into()),
                ("distributor_id", distributor_id.into()),
            ]).await;
        }
        let deleted = api::domains::distribution::audits::apply_retention(&app.t.db).await.unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(audits(&app).await.len(), trail.len() + 1);
    }
}
