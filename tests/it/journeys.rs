//! The user systems end to end, over a real port and real WebSockets, as their clients use
//! them: PixCrawler (seed 001) from sign-up to a settled crawl, and the AI clone platform
//! (seed 002) from sign-up to tasks whose live status a `graphql-transport-ws` subscriber
//! follows. Another user sees none of it, on either.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::app::{PAYMENTS_SECRET, payment_callback};
use crate::common::on_both_backends;
use crate::common::server::{Client, Server};

const WAIT: Duration = Duration::from_secs(5);

/// Signs a new user up; returns (token, user id).
async fn sign_up(server: &Server, email: &str) -> (String, String) {
    let reply = server
        .graphql(
            None,
            "mutation($i: SignUpInput!) { signUp(input: $i) { token user { rowId } userErrors { message } } }",
            json!({ "i": { "email": email, "password": "correct horse battery" } }),
        )
        .await;
    let up = &reply["data"]["signUp"];
    assert_eq!(up["userErrors"], json!([]), "{reply}");
    (
        up["token"].as_str().unwrap().to_owned(),
        up["user"]["rowId"].as_str().unwrap().to_owned(),
    )
}

/// Runs `query` and returns its `data`, asserting no errors and no user errors in `m`.
async fn ok(server: &Server, token: &str, query: &str, variables: Value) -> Value {
    let reply = server.graphql(Some(token), query, variables).await;
    assert!(reply.get("errors").is_none(), "{query}: {reply}");
    if let Some(errors) = reply["data"]["m"].get("userErrors") {
        assert_eq!(errors, &json!([]), "{query}: {reply}");
    }
    reply["data"].clone()
}

/// A WebSocket client of `token` with `subscriptions` (id, query, variables) running.
async fn subscriber(server: &Server, token: &str, subscriptions: &[(&str, &str, Value)]) -> Client {
    let mut client = Client::connect(server.addr, false).await;
    client.init(token).await;
    for (id, query, variables) in subscriptions {
        client.subscribe(id, query, variables.clone()).await;
    }
    client
}

/// A key with the WORKER scope for the signed-in user of `token`.
async fn worker_key(server: &Server, token: &str) -> String {
    let data = ok(
        server,
        token,
        "mutation { m: apiKeyCreate(input: {name: \"worker\", scopes: [WORKER]}) { secret } }",
        json!({}),
    )
    .await;
    data["m"]["secret"].as_str().unwrap().to_owned()
}

/// POSTs a GraphQL operation with an API key.
async fn with_key(server: &Server, key: &str, query: &str, variables: Value) -> Value {
    let request = axum::http::Request::post("/graphql")
        .header("content-type", "application/json")
        .header("x-api-key", key)
        .body(axum::body::Body::from(
            json!({ "query": query, "variables": variables }).to_string(),
        ))
        .unwrap();
    let (status, body) = server.send(request).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("errors").is_none(), "{query}: {body}");
    body["data"].clone()
}

/// How a worker authenticates: `service_role`, or its user's WORKER key.
#[derive(Clone)]
enum Worker {
    Service(String),
    Key(String),
}

impl Worker {
    async fn run(&self, server: &Server, query: &str, variables: Value) -> Value {
        match self {
            Self::Service(token) => ok(server, token, query, variables).await,
            Self::Key(key) => with_key(server, key, query, variables).await,
        }
    }
}

/// Crawls chunks of `job` until none is left; returns how many it reported.
async fn crawl(server: &Server, worker: Worker, job: &str, seed: u64) -> usize {
    let mut reported = 0;
    loop {
        let claimed = worker
            .run(
                server,
                "mutation($i: CrawlJobClaimChunkInput!) { m: crawlJobClaimChunk(input: $i) { crawlChunk { id firstImage maxImages } leaseId userErrors { code } } }",
                json!({ "i": { "jobId": job, "leaseSeconds": 30 } }),
            )
            .await;
        let Some(chunk) = claimed["m"]["crawlChunk"]["id"].as_str() else {
            return reported;
        };
        let first = claimed["m"]["crawlChunk"]["firstImage"].as_u64().unwrap();
        // Two images of its own and image 0, which every chunk finds: after the first
        // report it is a duplicate by content hash.
        let images: Vec<Value> = (0..3)
            .map(|i| {
                let n = if i == 2 { 0 } else { first + i + 1 };
                json!({ "url": format!("https://img.test/{seed}/{n}.png"), "contentHash": format!("{n:064x}") })
            })
            .collect();
        worker
            .run(
                server,
                "mutation($i: CrawlJobReportChunkInput!) { m: crawlJobReportChunk(input: $i) { crawlChunk { status } userErrors { code message } } }",
                json!({ "i": { "chunkId": chunk, "leaseId": claimed["m"]["leaseId"], "images": images, "failed": 0 } }),
            )
            .await;
        reported += 1;
    }
}

/// What `token`'s user can see of the user systems' rows.
async fn visible(server: &Server, token: &str) -> Value {
    let data = ok(
        server,
        token,
        "{ payments { totalCount } projects { totalCount } crawlJobs { totalCount } crawlChunks { totalCount }
           images { totalCount } aiClones { totalCount } aiTasks { totalCount } notifications { totalCount } }",
        json!({}),
    )
    .await;
    data.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["totalCount"].clone()))
        .collect()
}

/// Gives the other user a notification of their own and waits for it on their socket:
/// everything committed before it has been delivered by then, so what else the socket
/// holds is all it will ever get of this run.
async fn heard_only_their_own(server: &Server, other: &str, client: &mut Client) {
    ok(
        server,
        other,
        "mutation { m: creditsSpend(input: {amount: 95}) { userErrors { code } } }",
        json!({}),
    )
    .await;
    client
        .until("notes", WAIT, |e| {
            e["data"]["notificationAdded"]["node"]["title"] == "Credits are running low"
        })
        .await;
    assert_eq!(
        client.events.get("notes").map(Vec::len),
        Some(1),
        "{:?}",
        client.events
    );
}

on_both_backends! {
    /// Sign up, buy credits through the provider's signed callback, make a project and a
    /// job, two workers crawl its chunks, the job completes with its credits settled and
    /// the notification arrives on a subscription.
    async fn pixcrawler_from_sign_up_to_a_settled_crawl(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let service = crate::common::app::TestApp::service();
        let (token, _) = sign_up(&server, "pix@example.com").await;
        let (other, _) = sign_up(&server, "bystander@example.com").await;
        let notes = ("notes", "subscription { notificationAdded { node { title type } } }", json!({}));
        let mut client = subscriber(&server, &token, std::slice::from_ref(&notes)).await;
        let mut bystander = subscriber(&server, &other, std::slice::from_ref(&notes)).await;
        server.subscribed(2).await;

        ok(&server, &token, "mutation { m: paymentCreate(input: {orderId: \"PIX-1\", amount: \"19.00\", credits: 1000}) { userErrors { field code } } }", json!({})).await;
        for event in ["payment.approved", "payment.completed"] {
            let (status, body) = server.send(payment_callback(PAYMENTS_SECRET, event, "PIX-1")).await;
            assert_eq!(status, 200, "{body}");
        }
        let project = ok(&server, &token, "mutation { m: projectCreate(input: {name: \"birds\"}) { project { id } userErrors { code } } }", json!({})).await;
        let project = project["m"]["project"]["id"].clone();
        let job = ok(
            &server,
            &token,
            "mutation($i: CrawlJobCreateInput!) { m: crawlJobCreate(input: $i) { crawlJob { id totalChunks } userErrors { field code } } }",
            json!({ "i": { "projectId": project, "name": "birds", "keywords": ["heron"], "maxImages": 40, "config": { "chunkSize": 10 } } }),
        )
        .await;
        assert_eq!(job["m"]["crawlJob"]["totalChunks"], 4);
        let job = job["m"]["crawlJob"]["id"].as_str().unwrap().to_owned();
        let jobs = ("job", "subscription($p: ID) { crawlJobUpdated(projectId: $p) { node { status progress } } }", json!({ "p": project }));
        client.subscribe(jobs.0, jobs.1, jobs.2.clone()).await;
        server.subscribed(3).await;

        let key = worker_key(&server, &token).await;
        let (a, b) = tokio::join!(
            crawl(&server, Worker::Key(key), &job, 1),
            crawl(&server, Worker::Service(service.clone()), &job, 1),
        );
        let finished = client.until("job", WAIT, |e| e["data"]["crawlJobUpdated"]["node"]["status"] == "completed").await;
        client.seen("notes", WAIT, |e| e["data"]["notificationAdded"]["node"]["title"] == "Crawl job completed").await;

        assert_eq!(a + b, 4);
        assert_eq!(finished["data"]["crawlJobUpdated"]["node"]["progress"], 100);
        let settled = ok(
            &server,
            &token,
            "query($id: ID!) { node(id: $id) { ... on CrawlJob { creditsReserved creditsUsed validImages } } creditAccounts { nodes { balance } } }",
            json!({ "id": job }),
        )
        .await;
        // 4 chunks of 3 images, each with image 0 among them: 8 distinct images, and
        // image 0 new once and a duplicate three times, even with reports at once.
        let used = settled["node"]["creditsUsed"].as_i64().unwrap();
        assert_eq!(settled["node"]["validImages"].as_i64().unwrap(), used);
        assert_eq!(used, 9, "{settled}");
        assert_eq!(settled["creditAccounts"]["nodes"][0]["balance"], 100 + 1000 - used);
        let titles: Vec<_> = client.events["notes"].iter().map(|e| e["data"]["notificationAdded"]["node"]["title"].clone()).collect();
        assert!(titles.contains(&json!("Payment completed")), "{titles:?}");
        let seen = visible(&server, &other).await;
        assert_eq!(seen, json!({ "payments": 0, "projects": 0, "crawlJobs": 0, "crawlChunks": 0, "images": 0, "aiClones": 0, "aiTasks": 0, "notifications": 0 }));
        heard_only_their_own(&server, &other, &mut bystander).await;
    }

    /// Sign up, make a clone, queue tasks; workers claim and complete them while a
    /// subscriber sees each task go pending -> in_progress -> completed.
    async fn ai_clones_from_sign_up_to_live_task_status(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let service = crate::common::app::TestApp::service();
        let (token, _) = sign_up(&server, "clone@example.com").await;
        let (other, _) = sign_up(&server, "onlooker@example.com").await;

        let refused = server
            .graphql(Some(&token), "mutation { m: aiCloneCreate(input: {name: \"ada\", modelType: \"gpt-4\", config: {temperature: 7}}) { userErrors { field code } } }", json!({}))
            .await;
        assert_eq!(refused["data"]["m"]["userErrors"], json!([{ "field": ["input", "config"], "code": "INVALID" }]), "{refused}");
        let clone = ok(
            &server,
            &token,
            "mutation { m: aiCloneCreate(input: {name: \"ada\", modelType: \"gpt-4\", config: {model_version: \"4.0\", temperature: 0.7, max_tokens: 2000}}) { aiClone { rowId } userErrors { field code } } }",
            json!({}),
        )
        .await;
        let clone = clone["m"]["aiClone"]["rowId"].clone();
        let live = ("tasks", "subscription($c: ID) { aiTaskUpdated(cloneId: $c) { rowId node { status } } }", json!({ "c": clone }));
        let notes = ("notes", "subscription { notificationAdded { node { title } } }", json!({}));
        let mut client = subscriber(&server, &token, &[live]).await;
        let mut onlooker = subscriber(&server, &other, &[notes]).await;
        server.subscribed(2).await;

        let mut tasks = Vec::new();
        for (name, priority) in [("summarise", "low"), ("translate", "urgent"), ("classify", "medium")] {
            let made = ok(
                &server,
                &token,
                "mutation($i: AiTaskCreateInput!) { m: aiTaskCreate(input: $i) { aiTask { rowId } userErrors { field code } } }",
                json!({ "i": { "cloneId": clone, "taskName": name, "priority": priority, "taskInput": { "text": name } } }),
            )
            .await;
            tasks.push(made["m"]["aiTask"]["rowId"].as_str().unwrap().to_owned());
        }
        // The subscriber has seen every task pending before any worker starts.
        while client.events.get("tasks").map_or(0, Vec::len) < tasks.len() {
            client.event("tasks", WAIT).await;
        }
        let key = worker_key(&server, &token).await;
        let work = |worker: Worker| {
            let server = &server;
            async move {
                let mut claimed_names = Vec::new();
                loop {
                    let claimed = worker
                        .run(server, "mutation { m: aiTaskClaim(input: {leaseSeconds: 30}) { aiTask { id taskName } leaseId } }", json!({}))
                        .await;
                    let Some(task) = claimed["m"]["aiTask"]["id"].as_str() else {
                        return claimed_names;
                    };
                    claimed_names.push(claimed["m"]["aiTask"]["taskName"].clone());
                    worker
                        .run(
                            server,
                            "mutation($i: AiTaskCompleteInput!) { m: aiTaskComplete(input: $i) { aiTask { status } userErrors { code } } }",
                            json!({ "i": { "taskId": task, "leaseId": claimed["m"]["leaseId"], "output": { "result": "success" } } }),
                        )
                        .await;
                }
            }
        };
        let (a, b) = tokio::join!(work(Worker::Key(key)), work(Worker::Service(service)));
        // Three changes a task: made, claimed, completed; each reaches the subscriber.
        while client.events.get("tasks").map_or(0, Vec::len) < 3 * tasks.len() {
            client.event("tasks", WAIT).await;
        }

        assert_eq!(a.len() + b.len(), 3);
        // The urgent task went first.
        assert!([&a, &b].iter().any(|names| names.first() == Some(&json!("translate"))), "{a:?} {b:?}");
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        for event in &client.events["tasks"] {
            let change = &event["data"]["aiTaskUpdated"];
            seen.entry(change["rowId"].as_str().unwrap().to_owned())
                .or_default()
                .push(change["node"]["status"].as_str().unwrap().to_owned());
        }
        // An event carries the row as it is when delivered: a claim delivered after the
        // completion already reads `completed`. The order never goes back.
        let rank = |status: &str| ["pending", "in_progress", "completed"].iter().position(|s| *s == status);
        for task in &tasks {
            let statuses = &seen[task];
            assert_eq!(statuses.len(), 3, "{task}: {seen:?}");
            assert_eq!((statuses[0].as_str(), statuses[2].as_str()), ("pending", "completed"), "{task}: {seen:?}");
            assert!(statuses.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])), "{task}: {seen:?}");
        }
        let visible_to_other = visible(&server, &other).await;
        assert_eq!(visible_to_other["aiTasks"], 0);
        assert_eq!(visible_to_other["aiClones"], 0);
        heard_only_their_own(&server, &other, &mut onlooker).await;
    }
}
