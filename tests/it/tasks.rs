//! The AI task queue: workers share it safely under leases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::{fixtures, on_both_backends};

const CLAIM: &str = "mutation($i: AiTaskClaimInput!) { aiTaskClaim(input: $i) { aiTask { id status attempts } leaseId userErrors { field code } } }";
const COMPLETE: &str = "mutation($i: AiTaskCompleteInput!) { aiTaskComplete(input: $i) { aiTask { status taskOutput completedAt } userErrors { field code } } }";
const HEARTBEAT: &str = "mutation($i: AiTaskHeartbeatInput!) { aiTaskHeartbeat(input: $i) { aiTask { status } userErrors { field code } } }";

fn claimed(reply: &Reply) -> Option<(String, String)> {
    let payload = &reply.data()["aiTaskClaim"];
    let id = payload["aiTask"]["id"].as_str()?.to_owned();
    Some((id, payload["leaseId"].as_str().unwrap().to_owned()))
}

async fn complete(app: &TestApp, token: &str, task: &str, lease: &str) -> Reply {
    app.graphql(
        Some(token),
        COMPLETE,
        json!({ "i": { "taskId": task, "leaseId": lease, "output": { "done": true } } }),
    )
    .await
}

fn code(reply: &Reply, field: &str) -> Value {
    reply.data()[field]["userErrors"][0]["code"].clone()
}

async fn statuses(app: &TestApp) -> Vec<(String, i64)> {
    let reply = app
        .query(
            "{ aiTasks { groupBy(by: [{field: STATUS}]) { key { status } count } } }",
            json!({}),
        )
        .await;
    reply.data()["aiTasks"]["groupBy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"]["status"].as_str().unwrap().to_owned(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect()
}

on_both_backends! {
    async fn eight_workers_complete_a_thousand_tasks_exactly_once_though_one_dies(t) {
        let app = Arc::new(TestApp::new(t).await);
        fixtures::queue(&app.t.db, "busy@example.com", 1000).await;
        let service = TestApp::service();
        // The worker that dies: it claims five tasks under a short lease and never comes back.
        let mut orphans = Vec::new();
        for _ in 0..5 {
            let reply = app.graphql(Some(&service), CLAIM, json!({ "i": { "leaseSeconds": 1 } })).await;
            orphans.push(claimed(&reply).unwrap());
        }
        let completions = Arc::new(AtomicUsize::new(0));

        let workers = (0..8).map(|_| {
            let (app, service, completions) = (app.clone(), service.clone(), completions.clone());
            tokio::spawn(async move {
                loop {
                    let reply = app.graphql(Some(&service), CLAIM, json!({ "i": { "leaseSeconds": 30 } })).await;
                    let Some((task, lease)) = claimed(&reply) else {
                        if completions.load(Ordering::SeqCst) >= 1000 {
                            return;
                        }
                        // Only the dead worker's tasks are left: their leases run out soon.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    };
                    let done = complete(&app, &service, &task, &lease).await;
                    assert_eq!(done.data()["aiTaskComplete"]["userErrors"], json!([]), "{}", done.body);
                    completions.fetch_add(1, Ordering::SeqCst);
                }
            })
        });
        for worker in workers.collect::<Vec<_>>() {
            tokio::time::timeout(Duration::from_secs(300), worker).await.unwrap().unwrap();
        }
        let (task, lease) = &orphans[0];
        let late = complete(&app, &service, task, lease).await;

        assert_eq!(completions.load(Ordering::SeqCst), 1000);
        let usage = app
            .query("{ usageMetrics(filter: {metric: {eq: \"tasks_run\"}}) { nodes { value } } }", json!({}))
            .await;
        assert_eq!(usage.data()["usageMetrics"]["nodes"], json!([{ "value": "1000" }]));
        assert_eq!(statuses(&app).await, vec![("completed".to_owned(), 1000)]);
        assert_eq!(code(&late, "aiTaskComplete"), "LEASE_LOST", "{}", late.body);
    }

    async fn a_worker_key_claims_only_its_users_tasks_and_a_user_token_claims_none(t) {
        let app = TestApp::new(t).await;
        let (owner, _) = fixtures::queue(&app.t.db, "owner@example.com", 2).await;
        fixtures::queue(&app.t.db, "other@example.com", 3).await;
        let user_token = TestApp::token("authenticated", &owner.to_string());
        let key = app
            .graphql(
                Some(&user_token),
                "mutation { apiKeyCreate(input: {name: \"runner\", scopes: [WORKER]}) { secret userErrors { code } } }",
                json!({}),
            )
            .await;
        let secret = key.data()["apiKeyCreate"]["secret"].as_str().unwrap().to_owned();
        let as_worker = |query: &'static str, variables: Value| {
            let body = json!({ "query": query, "variables": variables }).to_string();
            let request = axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .header("x-api-key", secret.clone())
                .body(axum::body::Body::from(body))
                .unwrap();
            app.send(request)
        };

        let by_user = app.graphql(Some(&user_token), CLAIM, json!({ "i": {} })).await;
        let first = as_worker(CLAIM, json!({ "i": {} })).await;
        let second = as_worker(CLAIM, json!({ "i": {} })).await;
        let third = as_worker(CLAIM, json!({ "i": {} })).await;
        let (task, lease) = claimed(&first).unwrap();
        let beat = as_worker(HEARTBEAT, json!({ "i": { "taskId": task, "leaseId": lease, "leaseSeconds": 120 } })).await;
        let wrong_lease = as_worker(HEARTBEAT, json!({ "i": { "taskId": task, "leaseId": Uuid::new_v4() } })).await;
        let spend = as_worker("mutation { creditsSpend(input: {amount: 1}) { userErrors { code } } }", json!({})).await;

        assert_eq!(by_user.code(), "FORBIDDEN", "{}", by_user.body);
        assert!(claimed(&second).is_some());
        assert!(claimed(&third).is_none(), "the other user's tasks were claimable: {}", third.body);
        assert_eq!(beat.data()["aiTaskHeartbeat"]["aiTask"]["status"], "in_progress", "{}", beat.body);
        assert_eq!(code(&wrong_lease, "aiTaskHeartbeat"), "LEASE_LOST", "{}", wrong_lease.body);
        assert_eq!(spend.code(), "FORBIDDEN", "a worker key only works the queue: {}", spend.body);
        assert_eq!(
            statuses(&app).await,
            vec![("in_progress".to_owned(), 2), ("pending".to_owned(), 3)]
        );
    }

    async fn the_sweeper_puts_expired_tasks_back_and_fails_them_when_attempts_run_out(t) {
        let app = TestApp::new(t).await;
        let (_, tasks) = fixtures::queue(&app.t.db, "sweep@example.com", 1).await;
        app.t
            .execute("UPDATE ai_tasks SET max_attempts = 2 WHERE id = $1", vec![tasks[0].into()])
            .await
            .unwrap();
        let service = TestApp::service();
        let expire = || app.t.execute("UPDATE ai_tasks SET lease_expires_at = $1", vec![(chrono::Utc::now() - chrono::Duration::seconds(5)).into()]);

        app.graphql(Some(&service), CLAIM, json!({ "i": {} })).await;
        expire().await.unwrap();
        let first = api::domains::studio::tasks::release_expired(&app.t.db).await.unwrap();
        let after_first = statuses(&app).await;
        app.graphql(Some(&service), CLAIM, json!({ "i": {} })).await;
        expire().await.unwrap();
        let second = api::domains::studio::tasks::release_expired(&app.t.db).await.unwrap();

        let tasks_written = |writes: &[api::realtime::Write]| writes.iter().filter(|w| w.table == "ai_tasks").count();
        assert_eq!(tasks_written(&first), 1);
        assert_eq!(after_first, vec![("pending".to_owned(), 1)]);
        assert_eq!(tasks_written(&second), 1);
        assert_eq!(statuses(&app).await, vec![("failed".to_owned(), 1)]);
        // Every state change left its log row: two claims, two expiries.
        let logs = app
            .query("{ activityLogs(orderBy: [{field: CREATED_AT}]) { nodes { action details } } }", json!({}))
            .await;
        let actions: Vec<&str> = logs.data()["activityLogs"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|n| n["action"].as_str())
            .filter(|a| a.starts_with("ai_task."))
            .collect();
        assert_eq!(actions.len(), 4, "{actions:?}");
        assert_eq!(actions.iter().filter(|a| **a == "ai_task.lease_expired").count(), 2);
    }
}

/// With the API's own scoping switched off, PostgreSQL's row-level security alone keeps a
/// WORKER key to its user's tasks.
mod row_level_security_alone_keeps_a_worker_to_its_users_tasks {
    use super::*;
    use crate::common::TestDb;

    #[tokio::test]
    async fn postgres() {
        let Some(t) = TestDb::postgres().await else {
            return;
        };
        let app = TestApp::with_api_scoping(t, false).await;
        let (owner, _) = fixtures::queue(&app.t.db, "owner@example.com", 2).await;
        fixtures::queue(&app.t.db, "other@example.com", 3).await;
        let user_token = TestApp::token("authenticated", &owner.to_string());
        let key = app
            .graphql(
                Some(&user_token),
                "mutation { apiKeyCreate(input: {name: \"runner\", scopes: [WORKER]}) { secret } }",
                json!({}),
            )
            .await;
        let secret = key.data()["apiKeyCreate"]["secret"]
            .as_str()
            .unwrap()
            .to_owned();
        let claim = || {
            let body = json!({ "query": CLAIM, "variables": { "i": {} } }).to_string();
            let request = axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .header("x-api-key", secret.clone())
                .body(axum::body::Body::from(body))
                .unwrap();
            app.send(request)
        };

        let claims = [claim().await, claim().await, claim().await];

        assert!(claimed(&claims[0]).is_some() && claimed(&claims[1]).is_some());
        assert!(
            claimed(&claims[2]).is_none(),
            "the other user's task was claimed: {}",
            claims[2].body
        );
        assert_eq!(
            statuses(&app).await,
            vec![("in_progress".to_owned(), 2), ("pending".to_owned(), 3)]
        );
    }
}
