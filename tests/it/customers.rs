//! A distributor's customers: summary fields (orders, total spent, last order) for a whole
//! page in a fixed number of statements, `last_order_at` kept by the database.

use serde_json::json;

use crate::common::app::TestApp;
use crate::common::on_both_backends;
use crate::distribution::{distributor, member, person};

const CUSTOMER: &str = "mutation($i: CustomerCreateInput!) { customerCreate(input: $i) { customer { rowId } userErrors { field code } } }";
const ORDER: &str = "mutation($i: OrderCreateInput!) { orderCreate(input: $i) { order { rowId } userErrors { field code message } } }";
const SUMMARY: &str = "{ customers(orderBy: [{field: NAME}]) { nodes { name lastOrderAt orders { aggregate { count sum { totalAmount } max { createdAt } } } } } }";

on_both_backends! {
    async fn customer_summaries_come_from_batched_aggregates(t) {
        let app = TestApp::new(t).await;
        let owner = person(&app, "owner@example.com").await;
        distributor(&app, &owner, "Acme").await;
        let staff = member(&app, &owner, "staff@example.com", "member").await;

        let mut statements = Vec::new();
        for round in 0..2 {
            // Each round adds three customers with two orders each.
            for c in 0..3 {
                let made = app.graphql(Some(&staff.token), CUSTOMER, json!({ "i": { "name": format!("c{round}{c}") } })).await;
                let customer = made.data()["customerCreate"]["customer"]["rowId"].clone();
                for (n, amount) in [(1, "10.50"), (2, "4.25")] {
                    let order = app.graphql(Some(&staff.token), ORDER, json!({ "i": {
                        "customerId": customer, "orderNumber": format!("o{round}{c}-{n}"), "totalAmount": amount } })).await;
                    assert!(order.data()["orderCreate"]["order"].is_object(), "{}", order.body);
                }
            }
            let summary = app.query(SUMMARY, json!({})).await;
            let nodes = summary.data()["customers"]["nodes"].as_array().unwrap().clone();
            assert_eq!(nodes.len(), 3 * (round + 1), "{}", summary.body);
            for node in &nodes {
                let orders = &node["orders"]["aggregate"];
                assert_eq!(orders["count"], 2, "{}", summary.body);
                assert_eq!(orders["sum"]["totalAmount"], "14.75", "{}", summary.body);
                assert_eq!(node["lastOrderAt"], orders["max"]["createdAt"], "{}", summary.body);
            }
            statements.push(summary.body["extensions"]["sqlStatements"].as_u64().unwrap());
        }
        assert_eq!(statements[0], statements[1], "statements do not grow with the customers");

        // Only the database moves the last order's time.
        let set = app.graphql(Some(&staff.token), CUSTOMER, json!({ "i": { "name": "x", "lastOrderAt": "2020-01-01T00:00:00Z" } })).await;
        assert!(set.body["errors"][0]["message"].as_str().unwrap().contains("lastOrderAt"), "{}", set.body);
    }
}
