//! Safe retries: a mutation request with an `Idempotency-Key` writes once, and every
//! request with that key gets the first answer.

use axum::body::Body;
use axum::http::Request;
use serde_json::{Value, json};

use crate::common::app::{Reply, TestApp};
use crate::common::{fixtures, on_both_backends};

const CREATE: &str = "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id title } userErrors { field code } } }";

async fn keyed(app: &TestApp, token: &str, key: &str, variables: Value) -> Reply {
    let body = json!({ "query": CREATE, "variables": variables }).to_string();
    let request = Request::post("/graphql")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("idempotency-key", key)
        .body(Body::from(body))
        .unwrap();
    app.send(request).await
}

async fn products(app: &TestApp) -> u64 {
    let reply = app.query("{ products { totalCount } }", json!({})).await;
    reply.data()["products"]["totalCount"].as_u64().unwrap()
}

on_both_backends! {
    async fn twenty_concurrent_requests_with_one_key_write_once_and_answer_alike(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "keys.myshopify.com").await;
        let service = TestApp::service();
        let input = json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "one", "title": "One" } });

        let replies = futures_util::future::join_all(
            (0..20).map(|_| keyed(&app, &service, "retry-1", input.clone())),
        )
        .await;

        let first = &replies[0].body["data"];
        assert!(first["productCreate"]["product"]["id"].is_string(), "{}", replies[0].body);
        for reply in &replies {
            assert_eq!(&reply.body["data"], first, "{}", reply.body);
        }
        assert_eq!(products(&app).await, 1);
    }

    async fn a_key_reused_for_another_request_is_a_conflict_and_writes_nothing(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "keys.myshopify.com").await;
        let service = TestApp::service();
        let first = json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "one", "title": "One" } });
        let other = json!({ "i": { "shopId": shop, "shopifyId": "2", "handle": "two", "title": "Two" } });
        keyed(&app, &service, "k", first).await.data();

        let reply = keyed(&app, &service, "k", other.clone()).await;

        assert_eq!(reply.code(), "CONFLICT", "{}", reply.body);
        assert_eq!(products(&app).await, 1);
        // Keys belong to their principal: another one may use the same key.
        let shop_token = TestApp::shop_token("keys.myshopify.com");
        let theirs = keyed(&app, &shop_token, "k", other).await;
        assert!(theirs.data()["productCreate"]["product"]["id"].is_string(), "{}", theirs.body);
        assert_eq!(products(&app).await, 2);
    }

    async fn a_request_that_rolled_back_leaves_its_key_free_for_the_retry(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "keys.myshopify.com").await;
        fixtures::product(&app.t.db, shop, "1").await;
        let service = TestApp::service();
        let taken = json!({ "i": { "shopId": shop, "shopifyId": "1", "handle": "new", "title": "New" } });

        let failed = keyed(&app, &service, "k", taken.clone()).await;
        app.t.execute("DELETE FROM products", Vec::new()).await.unwrap();
        let retried = keyed(&app, &service, "k", taken).await;

        assert_eq!(failed.data()["productCreate"]["userErrors"][0]["code"], "TAKEN");
        assert!(retried.data()["productCreate"]["product"]["id"].is_string(), "{}", retried.body);
        assert_eq!(products(&app).await, 1);
    }
}
