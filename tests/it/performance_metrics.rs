//! `performanceMetricsRecord`: a batch of a shop's products' metrics in one insert, all or
//! nothing, each bad metric named; another shop's product is unknown.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::{TestDb, fixtures, on_both_backends};

const RECORD: &str = "mutation($i: PerformanceMetricsRecordInput!) { m: performanceMetricsRecord(input: $i) { recorded userErrors { field code message } } }";

fn gid(product: Uuid) -> String {
    format!("gid://stratix/Product/{product}")
}

fn metric(product: Uuid, kind: &str, value: Value) -> Value {
    json!({ "productId": gid(product), "metricType": kind, "value": value })
}

/// `(product, type, value)` of every metric row, sorted.
async fn metrics_rows(t: &TestDb) -> Vec<(Uuid, String, String)> {
    let rows = t
        .query(
            "SELECT product_id, metric_type, value, shop_id FROM performance_metrics",
            vec![],
        )
        .await;
    let mut found: Vec<(Uuid, String, String)> = rows
        .iter()
        .map(|r| {
            let value: rust_decimal::Decimal = r.try_get_by_index(2).unwrap();
            (
                r.try_get_by_index(0).unwrap(),
                r.try_get_by_index(1).unwrap(),
                value.normalize().to_string(),
            )
        })
        .collect();
    found.sort();
    found
}

/// `[field path, code]` of each user error.
fn user_errors(reply: &crate::common::app::Reply) -> Vec<(String, String)> {
    reply.data()["m"]["userErrors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let field: Vec<&str> = e["field"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap())
                .collect();
            (field.join("."), e["code"].as_str().unwrap().to_owned())
        })
        .collect()
}

on_both_backends! {
    /// A shop records metrics of its products; each row is the shop's, with the values
    /// given.
    async fn a_shop_records_a_batch_of_its_products_metrics(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "metrics.myshopify.com").await;
        let (p1, p2) = (
            fixtures::product(&app.t.db, shop, "1").await,
            fixtures::product(&app.t.db, shop, "2").await,
        );
        let token = TestApp::shop_token("metrics.myshopify.com");
        let batch = json!([
            metric(p1, "views", json!(120)),
            metric(p1, "conversion_rate", json!("0.042")),
            metric(p2, "views", json!("7.5")),
        ]);

        let reply = app.graphql(Some(&token), RECORD, json!({ "i": { "metrics": batch } })).await;

        assert_eq!(reply.data()["m"], json!({ "recorded": 3, "userErrors": [] }));
        let mut expected = vec![
            (p1, "conversion_rate".to_owned(), "0.042".to_owned()),
            (p1, "views".to_owned(), "120".to_owned()),
            (p2, "views".to_owned(), "7.5".to_owned()),
        ];
        expected.sort();
        assert_eq!(metrics_rows(&app.t).await, expected);
        let owners = app.t.query("SELECT DISTINCT shop_id FROM performance_metrics", vec![]).await;
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].try_get_by_index::<Uuid>(0).unwrap(), shop);
    }

    /// One insert, however many rows: a batch of 500 runs as many statements as a batch
    /// of 1.
    async fn a_batch_is_one_insert_whatever_its_size(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "bulk.myshopify.com").await;
        let product = fixtures::product(&app.t.db, shop, "1").await;
        let batch = |n: usize| -> Value {
            Value::Array((0..n).map(|i| metric(product, "views", json!(i))).collect())
        };
        let shop_gid = format!("gid://stratix/Shop/{shop}");

        let one = app.query(RECORD, json!({ "i": { "shopId": shop_gid, "metrics": batch(1) } })).await;
        let many = app.query(RECORD, json!({ "i": { "shopId": shop_gid, "metrics": batch(500) } })).await;

        assert_eq!(one.data()["m"]["recorded"], 1);
        assert_eq!(many.data()["m"]["recorded"], 500);
        assert_eq!(one.statements(), many.statements());
        assert_eq!(metrics_rows(&app.t).await.len(), 501);
    }

    /// A batch with bad metrics is refused whole: every bad index and field is named, and
    /// nothing is written, the good metrics included. Another shop's product is unknown.
    async fn a_batch_with_bad_metrics_is_refused_whole_and_writes_nothing(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "mine.myshopify.com").await;
        let other = fixtures::shop(&app.t.db, "theirs.myshopify.com").await;
        let mine = fixtures::product(&app.t.db, shop, "1").await;
        let theirs = fixtures::product(&app.t.db, other, "1").await;
        let token = TestApp::shop_token("mine.myshopify.com");
        let bad = json!([
            metric(mine, "views", json!(1)),
            metric(mine, "Views!", json!("1.0000001")),
            { "productId": "gid://stratix/Shop/x", "metricType": "views", "value": 1 },
        ]);
        let foreign = json!([
            metric(mine, "views", json!(1)),
            metric(theirs, "views", json!(2)),
            metric(Uuid::new_v4(), "views", json!(3)),
        ]);
        let too_many = Value::Array(vec![metric(mine, "views", json!(1)); 1001]);

        let refused = app.graphql(Some(&token), RECORD, json!({ "i": { "metrics": bad } })).await;
        let unknown = app.graphql(Some(&token), RECORD, json!({ "i": { "metrics": foreign } })).await;
        let over = app.graphql(Some(&token), RECORD, json!({ "i": { "metrics": too_many } })).await;
        let empty = app.graphql(Some(&token), RECORD, json!({ "i": { "metrics": [] } })).await;

        assert_eq!(
            user_errors(&refused),
            [
                ("input.metrics.1.metricType".to_owned(), "INVALID".to_owned()),
                ("input.metrics.1.value".to_owned(), "INVALID".to_owned()),
                ("input.metrics.2.productId".to_owned(), "INVALID".to_owned()),
            ]
        );
        assert_eq!(
            user_errors(&unknown),
            [
                ("input.metrics.1.productId".to_owned(), "NOT_FOUND".to_owned()),
                ("input.metrics.2.productId".to_owned(), "NOT_FOUND".to_owned()),
            ]
        );
        assert_eq!(user_errors(&over), [("input.metrics".to_owned(), "INVALID".to_owned())]);
        assert_eq!(user_errors(&empty), [("input.metrics".to_owned(), "INVALID".to_owned())]);
        for reply in [&refused, &unknown, &over, &empty] {
            assert_eq!(reply.data()["m"]["recorded"], Value::Null);
        }
        assert!(metrics_rows(&app.t).await.is_empty());
    }

    /// `service_role` records for the shop it names (and must name one); a user may not
    /// record, an anonymous caller must sign in; a shop naming another shop finds none of
    /// its own products there.
    async fn only_the_shop_or_service_role_for_it_records_metrics(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "owner.myshopify.com").await;
        let other = fixtures::shop(&app.t.db, "other.myshopify.com").await;
        let product = fixtures::product(&app.t.db, shop, "1").await;
        let user = fixtures::user(&app.t.db, "u@example.com").await;
        let batch = json!([metric(product, "views", json!(1))]);
        let named = |s: Uuid| json!({ "i": { "shopId": format!("gid://stratix/Shop/{s}"), "metrics": batch } });

        let unnamed = app.query(RECORD, json!({ "i": { "metrics": batch } })).await;
        let wrong_shop = app.query(RECORD, named(other)).await;
        let by_user = app
            .graphql(Some(&TestApp::token("authenticated", &user.to_string())), RECORD, json!({ "i": { "metrics": batch } }))
            .await;
        let anonymous = app.graphql(None, RECORD, json!({ "i": { "metrics": batch } })).await;
        let other_token = TestApp::shop_token("other.myshopify.com");
        let from_other = app.graphql(Some(&other_token), RECORD, named(shop)).await;
        let before = metrics_rows(&app.t).await;
        let by_service = app.query(RECORD, named(shop)).await;

        assert_eq!(user_errors(&unnamed), [("input.shopId".to_owned(), "BLANK".to_owned())]);
        assert_eq!(user_errors(&wrong_shop), [("input.metrics.0.productId".to_owned(), "NOT_FOUND".to_owned())]);
        assert_eq!(by_user.code(), "FORBIDDEN", "{}", by_user.body);
        assert_eq!(anonymous.code(), "UNAUTHENTICATED", "{}", anonymous.body);
        assert_eq!(user_errors(&from_other), [("input.metrics.0.productId".to_owned(), "NOT_FOUND".to_owned())]);
        assert!(before.is_empty());
        assert_eq!(by_service.data()["m"]["recorded"], 1);
        assert_eq!(metrics_rows(&app.t).await.len(), 1);
    }
}
