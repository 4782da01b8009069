//! Usage metrics: every counter is one upsert per day, user and metric, and no increment
//! is lost to a concurrent one.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::{fixtures, on_both_backends};

/// `user`'s counters today, by metric.
async fn counters(app: &TestApp, user: Uuid) -> Value {
    let reply = app
        .query(
            "query($u: UUID!) { usageMetrics(filter: {userId: {eq: $u}}, orderBy: [{field: METRIC}]) { nodes { metric value } } }",
            json!({ "u": user }),
        )
        .await;
    reply.data()["usageMetrics"]["nodes"].clone()
}

on_both_backends! {
    /// Requests counted while the meter is being written, from two users at once: every
    /// one is in the counters afterwards, once.
    async fn api_requests_are_counted_per_user_and_none_is_lost_to_a_concurrent_flush(t) {
        let app = TestApp::new(t).await;
        let ada = fixtures::user(&app.t.db, "ada@example.com").await;
        let bob = fixtures::user(&app.t.db, "bob@example.com").await;
        let tokens = [ada, bob].map(|u| TestApp::token("authenticated", &u.to_string()));

        let requests = futures_util::future::join_all((0..30).map(|i| {
            let token = &tokens[usize::from(i % 3 == 0)];
            let app = &app;
            async move { app.graphql(Some(token), "{ profiles { totalCount } }", json!({})).await }
        }));
        let flushes = async {
            for _ in 0..5 {
                app.usage.flush(&app.t.db).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        let (replies, ()) = tokio::join!(requests, flushes);
        app.usage.flush(&app.t.db).await.unwrap();

        assert!(replies.iter().all(|r| r.status == 200));
        assert_eq!(counters(&app, ada).await, json!([{ "metric": "api_requests", "value": "20" }]));
        assert_eq!(counters(&app, bob).await, json!([{ "metric": "api_requests", "value": "10" }]));
    }
}
