//! The cache (seed 000): entries set by key with a TTL; an expired entry is invisible at
//! once, to reads and writes alike, and the sweep deletes it.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::common::app::TestApp;
use crate::common::{fixtures, on_both_backends};

const SET: &str = "mutation($rows: [CacheEntryCreateInput!]!) { cacheUpsert(inputs: $rows) { cache { id key value } userErrors { field code message } } }";
const KEYS: &str = "{ cache(orderBy: [{field: KEY}]) { nodes { key value } } }";

fn entry(key: &str, value: i64, expires_in: Duration) -> serde_json::Value {
    json!({ "key": key, "value": { "v": value }, "type": "json", "expiresAt": Utc::now() + expires_in })
}

async fn rows(app: &TestApp) -> i64 {
    app.t.query("SELECT count(*) FROM cache", vec![]).await[0]
        .try_get_by_index(0)
        .unwrap()
}

/// An entry written straight to the table (a client cannot write one already expired).
async fn expired(app: &TestApp, shop: uuid::Uuid, key: &str) -> uuid::Uuid {
    fixtures::row(
        &app.t.db,
        "cache",
        vec![
            ("key", key.into()),
            ("value", json!({ "v": 0 }).into()),
            ("type", "json".into()),
            ("expires_at", (Utc::now() - Duration::seconds(1)).into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

on_both_backends! {
    async fn an_expired_entry_is_gone_at_once_and_swept_later(t) {
        let app = TestApp::new(t).await;
        let shop_id = fixtures::shop(&app.t.db, "a.myshopify.com").await;
        let shop = TestApp::shop_token("a.myshopify.com");

        let set = app.graphql(Some(&shop), SET, json!({ "rows": [entry("fresh", 1, Duration::hours(1))] })).await;
        assert!(set.data()["cacheUpsert"]["cache"].is_array(), "{}", set.body);
        let past = app.graphql(Some(&shop), SET, json!({ "rows": [entry("late", 1, Duration::seconds(-1))] })).await;
        assert_eq!(past.data()["cacheUpsert"]["userErrors"][0]["code"], "INVALID", "{}", past.body);
        let stale = expired(&app, shop_id, "stale").await;
        let stale_id = format!("gid://stratix/CacheEntry/{stale}");
        let read = app.graphql(Some(&shop), KEYS, json!({})).await;
        assert_eq!(read.data()["cache"]["nodes"], json!([{ "key": "fresh", "value": { "v": 1 } }]), "{}", read.body);

        // Neither `node` nor an update finds it.
        let node = app.graphql(Some(&shop), "query($id: ID!) { node(id: $id) { id } }", json!({ "id": stale_id })).await;
        assert!(node.data()["node"].is_null(), "{}", node.body);
        let update = app.graphql(Some(&shop), "mutation($id: ID!) { cacheEntryUpdate(id: $id, input: {value: {v: 9}}) { userErrors { code } } }", json!({ "id": stale_id })).await;
        assert_eq!(update.data()["cacheEntryUpdate"]["userErrors"][0]["code"], "NOT_FOUND", "{}", update.body);

        // Setting the key again brings it back with the new value and expiry.
        app.graphql(Some(&shop), SET, json!({ "rows": [entry("stale", 3, Duration::hours(1))] })).await;
        let read = app.graphql(Some(&shop), KEYS, json!({})).await;
        assert_eq!(read.data()["cache"]["nodes"][1], json!({ "key": "stale", "value": { "v": 3 } }), "{}", read.body);

        // The sweep deletes what has expired, and only that.
        expired(&app, shop_id, "old").await;
        assert_eq!(rows(&app).await, 3);
        assert_eq!(api::ops::expiry::sweep(&app.t.db).await.unwrap(), 1);
        assert_eq!(rows(&app).await, 2);
    }
}
