//! Products' versioned AI content: numbered without gaps or duplicates under concurrency,
//! published to the product, restored as a new version.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::{TestDb, fixtures, on_both_backends};

const CREATE: &str = "mutation($i: ContentRevisionCreateInput!) { m: contentRevisionCreate(input: $i) { contentRevision { id version content } userErrors { field code message } } }";

/// A shop with one product: (shop token, the product's global id, the product).
async fn shop_with_product(app: &TestApp, domain: &str) -> (String, String, Uuid) {
    let shop = fixtures::shop(&app.t.db, domain).await;
    let product = fixtures::product(&app.t.db, shop, "p-1").await;
    (
        TestApp::shop_token(domain),
        format!("gid://stratix/Product/{product}"),
        product,
    )
}

/// The versions of `product`'s revisions, ascending.
async fn versions(app: &TestApp, product: Uuid) -> Vec<i64> {
    let reply = app
        .query(
            "query($p: UUID!) { contentRevisions(filter: {productId: {eq: $p}}, orderBy: [{field: VERSION}]) { nodes { version } } }",
            json!({ "p": product }),
        )
        .await;
    reply.data()["contentRevisions"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["version"].as_i64().unwrap())
        .collect()
}

/// 50 creates at once from `apps` in turn: every one succeeds.
async fn fifty_at_once(apps: &[&TestApp], token: &str, product: &str) {
    let replies = futures_util::future::join_all((0..50).map(|i| {
        let app = apps[i % apps.len()];
        async move {
            let input = json!({ "i": { "productId": product, "content": format!("draft {i}") } });
            app.graphql(Some(token), CREATE, input).await
        }
    }))
    .await;
    for reply in &replies {
        assert_eq!(reply.data()["m"]["userErrors"], json!([]), "{}", reply.body);
    }
}

on_both_backends! {
    /// 50 revisions written at once for one product are versions 1 to 50.
    async fn fifty_concurrent_revisions_are_numbered_without_gaps_or_duplicates(t) {
        let app = TestApp::new(t).await;
        let (token, product_gid, product) = shop_with_product(&app, "versions.myshopify.com").await;

        fifty_at_once(&[&app], &token, &product_gid).await;

        assert_eq!(versions(&app, product).await, (1..=50).collect::<Vec<_>>());
    }

    /// Publishing writes a revision to the product; restoring makes a new version with the
    /// old content and leaves the history as it was. Another shop's revision is not found.
    async fn a_revision_is_published_and_an_old_one_restored_as_a_new_version(t) {
        let app = TestApp::new(t).await;
        let (token, product_gid, product) = shop_with_product(&app, "publish.myshopify.com").await;
        let (other, _, _) = shop_with_product(&app, "other.myshopify.com").await;
        let mut ids = Vec::new();
        for content in ["first words", "second words"] {
            let reply = app.graphql(Some(&token), CREATE, json!({ "i": { "productId": product_gid, "content": content } })).await;
            ids.push(reply.data()["m"]["contentRevision"]["id"].as_str().unwrap().to_owned());
        }

        let published = app
            .graphql(Some(&token), "mutation($i: ContentRevisionPublishInput!) { m: contentRevisionPublish(input: $i) { product { description } userErrors { code } } }", json!({ "i": { "id": ids[1] } }))
            .await;
        let restored = app
            .graphql(Some(&token), "mutation($i: ContentRevisionRestoreInput!) { m: contentRevisionRestore(input: $i) { contentRevision { version content } userErrors { code } } }", json!({ "i": { "id": ids[0] } }))
            .await;
        let foreign = app
            .graphql(Some(&other), "mutation($i: ContentRevisionRestoreInput!) { m: contentRevisionRestore(input: $i) { contentRevision { version } userErrors { code } } }", json!({ "i": { "id": ids[0] } }))
            .await;
        let foreign_create = app.graphql(Some(&other), CREATE, json!({ "i": { "productId": product_gid, "content": "theirs" } })).await;
        let blank = app.graphql(Some(&token), CREATE, json!({ "i": { "productId": product_gid, "content": "  " } })).await;

        assert_eq!(published.data()["m"]["product"]["description"], "second words");
        assert_eq!(restored.data()["m"]["contentRevision"], json!({ "version": 3, "content": "first words" }));
        assert_eq!(foreign.data()["m"]["userErrors"][0]["code"], "NOT_FOUND", "{}", foreign.body);
        assert_eq!(foreign_create.data()["m"]["userErrors"][0]["code"], "NOT_FOUND");
        assert_eq!(blank.data()["m"]["userErrors"][0]["field"], json!(["input", "content"]));
        assert_eq!(versions(&app, product).await, vec![1, 2, 3]);
        let history = app.query("{ contentRevisions(orderBy: [{field: VERSION}]) { nodes { content } } }", json!({})).await;
        let contents: Vec<Value> = history.data()["contentRevisions"]["nodes"].as_array().unwrap().iter().map(|n| n["content"].clone()).collect();
        assert_eq!(contents, [json!("first words"), json!("second words"), json!("first words")]);
    }
}

/// The same from two instances of the service on one PostgreSQL database.
mod fifty_revisions_from_two_instances_are_numbered_without_gaps {
    use super::*;

    #[tokio::test]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let first = TestApp::new(t).await;
        let second = first.another_instance().await;
        let (token, product_gid, product) = shop_with_product(&first, "two.myshopify.com").await;

        fifty_at_once(&[&first, &second], &token, &product_gid).await;

        assert_eq!(
            versions(&first, product).await,
            (1..=50).collect::<Vec<_>>()
        );
    }
}
