//! Notifications: workflows send them where preferences allow, users mark them read.

use serde_json::json;

use crate::common::app::TestApp;
use crate::common::{fixtures, on_both_backends};

const CLAIM: &str = "mutation { aiTaskClaim(input: {}) { aiTask { id } leaseId } }";
const COMPLETE: &str =
    "mutation($i: AiTaskCompleteInput!) { aiTaskComplete(input: $i) { userErrors { code } } }";
const NOTIFICATIONS: &str =
    "{ notifications(orderBy: [{field: CREATED_AT}]) { nodes { id type severity title readAt } } }";

/// Claims and completes the next task as `service_role`.
async fn run_next_task(app: &TestApp) {
    let service = TestApp::service();
    let claimed = app.graphql(Some(&service), CLAIM, json!({})).await;
    let claim = &claimed.data()["aiTaskClaim"];
    let input = json!({ "i": { "taskId": claim["aiTask"]["id"], "leaseId": claim["leaseId"] } });
    let done = app.graphql(Some(&service), COMPLETE, input).await;
    assert_eq!(
        done.data()["aiTaskComplete"]["userErrors"],
        json!([]),
        "{}",
        done.body
    );
}

on_both_backends! {
    async fn a_finished_task_notifies_its_user_unless_the_preferences_say_no(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::queue(&app.t.db, "notified@example.com", 2).await.0;
        let token = TestApp::token("authenticated", &user.to_string());

        run_next_task(&app).await;
        let preferences = app.graphql(Some(&token), "{ notificationPreferences { nodes { id } } }", json!({})).await;
        let id = preferences.data()["notificationPreferences"]["nodes"][0]["id"].clone();
        let off = app
            .graphql(
                Some(&token),
                "mutation($id: ID!) { notificationPreferenceUpdate(id: $id, input: {aiTaskInApp: false}) { userErrors { code } } }",
                json!({ "id": id }),
            )
            .await;
        run_next_task(&app).await;
        let seen = app.graphql(Some(&token), NOTIFICATIONS, json!({})).await;

        assert_eq!(off.data()["notificationPreferenceUpdate"]["userErrors"], json!([]));
        let nodes = seen.data()["notifications"]["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes.len(), 1, "{}", seen.body);
        assert_eq!(nodes[0]["type"], "ai_task");
        assert_eq!(nodes[0]["severity"], "success");
        assert_eq!(nodes[0]["title"], "Task completed");
    }

    async fn users_mark_their_own_notifications_read(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::queue(&app.t.db, "reader@example.com", 3).await.0;
        let other = fixtures::queue(&app.t.db, "other@example.com", 1).await.0;
        for _ in 0..4 {
            run_next_task(&app).await;
        }
        let token = TestApp::token("authenticated", &user.to_string());
        let theirs = TestApp::token("authenticated", &other.to_string());
        let mine = app.graphql(Some(&token), NOTIFICATIONS, json!({})).await;
        let first = mine.data()["notifications"]["nodes"][0]["id"].clone();
        let mark = "mutation($i: NotificationsMarkReadInput!) { notificationsMarkRead(input: $i) { count userErrors { field code } } }";

        let by_other = app.graphql(Some(&theirs), mark, json!({ "i": { "ids": [first] } })).await;
        let one = app.graphql(Some(&token), mark, json!({ "i": { "ids": [first] } })).await;
        let again = app.graphql(Some(&token), mark, json!({ "i": { "ids": [first] } })).await;
        let rest = app
            .graphql(Some(&token), "mutation { notificationsMarkAllRead { count } }", json!({}))
            .await;
        let wrong = app
            .graphql(Some(&token), mark, json!({ "i": { "ids": ["gid://stratix/AiTask/00000000-0000-0000-0000-000000000000"] } }))
            .await;

        assert_eq!(by_other.data()["notificationsMarkRead"]["count"], 0);
        assert_eq!(one.data()["notificationsMarkRead"]["count"], 1);
        assert_eq!(again.data()["notificationsMarkRead"]["count"], 0);
        assert_eq!(rest.data()["notificationsMarkAllRead"]["count"], 2);
        assert_eq!(wrong.data()["notificationsMarkRead"]["userErrors"][0]["field"], json!(["input", "ids"]));
        let other_view = app.graphql(Some(&theirs), NOTIFICATIONS, json!({})).await;
        assert!(other_view.data()["notifications"]["nodes"][0]["readAt"].is_null());
    }

    async fn a_spend_that_crosses_the_low_mark_warns_once(t) {
        let app = TestApp::new(t).await;
        let user = fixtures::user(&app.t.db, "low@example.com").await;
        let token = TestApp::token("authenticated", &user.to_string());
        let spend = "mutation($n: Int!) { creditsSpend(input: {amount: $n}) { userErrors { code } } }";

        app.graphql(Some(&token), spend, json!({ "n": 85 })).await;
        app.graphql(Some(&token), spend, json!({ "n": 10 })).await;
        app.graphql(Some(&token), spend, json!({ "n": 2 })).await;
        let seen = app.graphql(Some(&token), NOTIFICATIONS, json!({})).await;

        let nodes = seen.data()["notifications"]["nodes"].as_array().unwrap().clone();
        assert_eq!(nodes.len(), 1, "{}", seen.body);
        assert_eq!(nodes[0]["type"], "billing");
        assert_eq!(nodes[0]["severity"], "warning");
    }
}
