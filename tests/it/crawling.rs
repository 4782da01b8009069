//! Crawl jobs: credits reserved when a job is made, chunks claimed by workers that never
//! share one, reported once, and the job settled when the last chunk is in.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{Reply, TestApp};
use crate::common::fixtures::{self, row};
use crate::common::on_both_backends;

const CREATE: &str = "mutation($i: CrawlJobCreateInput!) { m: crawlJobCreate(input: $i) { crawlJob { id status totalChunks creditsReserved } userErrors { field code message } } }";
const CLAIM: &str = "mutation($i: CrawlJobClaimChunkInput!) { m: crawlJobClaimChunk(input: $i) { crawlChunk { id position maxImages } crawlJob { status } leaseId userErrors { field code message } } }";
const REPORT: &str = "mutation($i: CrawlJobReportChunkInput!) { m: crawlJobReportChunk(input: $i) { crawlChunk { status imagesFound } userErrors { field code message } } }";
const CANCEL: &str = "mutation($i: CrawlJobCancelInput!) { m: crawlJobCancel(input: $i) { crawlJob { status } userErrors { field code message } } }";
const JOB: &str = "query($id: ID!) { node(id: $id) { ... on CrawlJob { status progress totalChunks activeChunks completedChunks failedChunks totalImages downloadedImages validImages creditsReserved creditsUsed completedAt } } }";

/// A user with a project: (user, their token, the project's global id).
async fn owner(app: &TestApp, email: &str) -> (Uuid, String, String) {
    let user = fixtures::user(&app.t.db, email).await;
    let project = row(
        &app.t.db,
        "projects",
        vec![("name", "cats".into()), ("user_id", user.into())],
    )
    .await;
    let token = TestApp::token("authenticated", &user.to_string());
    (user, token, format!("gid://stratix/Project/{project}"))
}

/// Makes a job of `max_images` in chunks of `chunk_size`; returns its global id.
async fn job(
    app: &TestApp,
    token: &str,
    project: &str,
    max_images: i64,
    chunk_size: i64,
) -> String {
    let input = json!({ "i": {
        "projectId": project, "name": "cats", "keywords": ["cat"], "maxImages": max_images,
        "config": { "sources": ["google"], "chunkSize": chunk_size },
    } });
    let reply = app.graphql(Some(token), CREATE, input).await;
    assert_eq!(reply.data()["m"]["userErrors"], json!([]), "{}", reply.body);
    reply.data()["m"]["crawlJob"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A claimed chunk: (its global id, the lease), or `None`.
async fn claim(app: &TestApp, token: &str, job: Option<&str>) -> Option<(String, String)> {
    let reply = app
        .graphql(Some(token), CLAIM, json!({ "i": { "jobId": job } }))
        .await;
    let m = &reply.data()["m"];
    assert_eq!(m["userErrors"], json!([]), "{}", reply.body);
    Some((
        m["crawlChunk"]["id"].as_str()?.to_owned(),
        m["leaseId"].as_str()?.to_owned(),
    ))
}

/// `n` images with these content-hash seeds.
fn images(seeds: &[u8]) -> Value {
    seeds
        .iter()
        .map(|seed| {
            json!({
                "url": format!("https://img.test/{seed}.jpg"),
                "contentHash": format!("{:064x}", *seed as u64 + 1),
                "width": 640, "height": 480, "format": "jpeg",
            })
        })
        .collect()
}

async fn report(
    app: &TestApp,
    token: &str,
    chunk: &(String, String),
    images: Value,
    error: Option<&str>,
) -> Reply {
    let input = json!({ "i": { "chunkId": chunk.0, "leaseId": chunk.1, "images": images, "failed": 1, "error": error } });
    app.graphql(Some(token), REPORT, input).await
}

async fn state(app: &TestApp, job: &str) -> Value {
    app.query(JOB, json!({ "id": job })).await.data()["node"].clone()
}

fn user_errors(reply: &Reply) -> Value {
    reply.data()["m"]["userErrors"].clone()
}

on_both_backends! {
    /// A job reserves a credit per image, splits into chunks, runs them with two workers,
    /// charges only for images new to the project and releases the rest when done.
    async fn a_job_reserves_credits_runs_its_chunks_and_settles_when_the_last_is_in(t) {
        let app = TestApp::new(t).await;
        let (user, token, project) = owner(&app, "crawler@example.com").await;
        let job = job(&app, &token, &project, 50, 20).await;
        let service = TestApp::service();
        let reserved = app.balance_and_ledger(user).await;

        let first = claim(&app, &service, Some(&job)).await.unwrap();
        let second = claim(&app, &service, Some(&job)).await.unwrap();
        let third = claim(&app, &service, None).await.unwrap();
        let none_left = claim(&app, &service, Some(&job)).await;
        let running = state(&app, &job).await;
        // Seeds 1 and 2 repeat across chunks, 3 repeats within one: duplicates.
        let reports = [
            report(&app, &service, &first, images(&[1, 2, 3]), None).await,
            report(&app, &service, &second, images(&[2, 3, 4, 4]), None).await,
        ];
        let midway = state(&app, &job).await;
        let last = report(&app, &service, &third, images(&[1]), Some("the search engine refused")).await;
        let done = state(&app, &job).await;

        assert_eq!(reserved, (50, 50));
        assert!(none_left.is_none());
        let distinct: std::collections::HashSet<_> = [&first.0, &second.0, &third.0].into_iter().collect();
        assert_eq!(distinct.len(), 3);
        assert_eq!((running["status"].clone(), running["activeChunks"].clone()), (json!("running"), json!(3)));
        for reply in reports.iter().chain([&last]) {
            assert_eq!(user_errors(reply), json!([]), "{}", reply.body);
        }
        assert_eq!(midway["progress"], 66);
        assert_eq!(midway["status"], "running");
        assert_eq!(done["status"], "completed", "{done}");
        assert_eq!(done["progress"], 100);
        assert_eq!((done["completedChunks"].clone(), done["failedChunks"].clone(), done["activeChunks"].clone()), (json!(2), json!(1), json!(0)));
        // 8 images stored (4 new), 3 failed downloads counted.
        assert_eq!((done["downloadedImages"].clone(), done["totalImages"].clone(), done["validImages"].clone()), (json!(8), json!(11), json!(4)));
        assert_eq!(done["creditsUsed"], 4);
        assert!(done["completedAt"].is_string());
        assert_eq!(app.balance_and_ledger(user).await, (96, 96));
        let seen = app
            .graphql(Some(&token), "{ images(filter: {isDuplicate: {eq: true}}) { totalCount } notifications { nodes { type title } } creditTransactions(orderBy: [{field: CREATED_AT}]) { nodes { kind amount } } }", json!({}))
            .await;
        assert_eq!(seen.data()["images"]["totalCount"], 4);
        assert_eq!(seen.data()["notifications"]["nodes"], json!([{ "type": "crawl_job", "title": "Crawl job completed" }]));
        let kinds: Vec<_> = seen.data()["creditTransactions"]["nodes"].as_array().unwrap().iter().map(|n| (n["kind"].clone(), n["amount"].clone())).collect();
        assert!(kinds.ends_with(&[(json!("reservation"), json!(-50)), (json!("release"), json!(46))]), "{kinds:?}");
    }

    /// Ten workers claim at once from eight chunks: eight distinct chunks, two nothing.
    async fn concurrent_workers_never_claim_the_same_chunk(t) {
        let app = TestApp::new(t).await;
        let (_, token, project) = owner(&app, "race@example.com").await;
        let job = job(&app, &token, &project, 80, 10).await;
        let service = TestApp::service();

        let claims = futures_util::future::join_all((0..10).map(|_| claim(&app, &service, Some(&job)))).await;

        let chunks: Vec<_> = claims.iter().flatten().map(|(chunk, _)| chunk.clone()).collect();
        let distinct: std::collections::HashSet<_> = chunks.iter().collect();
        assert_eq!((chunks.len(), distinct.len()), (8, 8));
        assert_eq!(state(&app, &job).await["activeChunks"], 8);
    }

    /// A chunk takes one report, from the worker holding its lease.
    async fn a_chunk_reported_twice_or_without_its_lease_is_refused(t) {
        let app = TestApp::new(t).await;
        let (_, token, project) = owner(&app, "twice@example.com").await;
        let job = job(&app, &token, &project, 20, 10).await;
        let service = TestApp::service();
        let chunk = claim(&app, &service, Some(&job)).await.unwrap();
        let wrong_lease = (chunk.0.clone(), Uuid::new_v4().to_string());

        let stolen = report(&app, &service, &wrong_lease, images(&[1]), None).await;
        let first = report(&app, &service, &chunk, images(&[1]), None).await;
        let again = report(&app, &service, &chunk, images(&[2]), None).await;
        let by_user = report(&app, &token, &chunk, images(&[3]), None).await;

        assert_eq!(user_errors(&stolen)[0]["code"], "LEASE_LOST", "{}", stolen.body);
        assert_eq!(user_errors(&first), json!([]));
        assert_eq!(user_errors(&again)[0]["code"], "INVALID_TRANSITION", "{}", again.body);
        assert_eq!(by_user.code(), "FORBIDDEN");
        let after = state(&app, &job).await;
        assert_eq!((after["completedChunks"].clone(), after["downloadedImages"].clone()), (json!(1), json!(1)));
    }

    /// A chunk whose lease ran out goes to the next claimer; the first worker's late
    /// report is LEASE_LOST and the job counts the chunk once.
    async fn an_expired_chunk_goes_to_the_next_worker_and_the_late_report_is_refused(t) {
        let app = TestApp::new(t).await;
        let (_, token, project) = owner(&app, "slow@example.com").await;
        let job = job(&app, &token, &project, 10, 10).await;
        let service = TestApp::service();
        let slow = claim(&app, &service, Some(&job)).await.unwrap();
        app.t.execute("UPDATE crawl_chunks SET lease_expires_at = $1", vec![(chrono::Utc::now() - chrono::Duration::seconds(1)).into()]).await.unwrap();

        let fast = claim(&app, &service, Some(&job)).await.unwrap();
        let late = report(&app, &service, &slow, images(&[1]), None).await;
        let on_time = report(&app, &service, &fast, images(&[2]), None).await;

        assert_eq!(fast.0, slow.0);
        assert_ne!(fast.1, slow.1);
        assert_eq!(user_errors(&late)[0]["code"], "LEASE_LOST", "{}", late.body);
        assert_eq!(user_errors(&on_time), json!([]));
        let done = state(&app, &job).await;
        assert_eq!((done["status"].clone(), done["activeChunks"].clone(), done["completedChunks"].clone()), (json!("completed"), json!(0), json!(1)));
    }

    /// Cancelling stops the chunks (a report after it is refused) and releases what was
    /// not used; a finished job cannot be cancelled.
    async fn cancelling_a_job_stops_its_chunks_and_releases_unused_credits(t) {
        let app = TestApp::new(t).await;
        let (user, token, project) = owner(&app, "cancel@example.com").await;
        let job = job(&app, &token, &project, 30, 10).await;
        let service = TestApp::service();
        let done = claim(&app, &service, Some(&job)).await.unwrap();
        report(&app, &service, &done, images(&[1, 2]), None).await;
        let held = claim(&app, &service, Some(&job)).await.unwrap();

        let cancelled = app.graphql(Some(&token), CANCEL, json!({ "i": { "id": job } })).await;
        let late = report(&app, &service, &held, images(&[3]), None).await;
        let nothing = claim(&app, &service, Some(&job)).await;
        let again = app.graphql(Some(&token), CANCEL, json!({ "i": { "id": job } })).await;

        assert_eq!(user_errors(&cancelled), json!([]), "{}", cancelled.body);
        assert_eq!(cancelled.data()["m"]["crawlJob"]["status"], "cancelled");
        assert_eq!(user_errors(&late)[0]["code"], "INVALID_TRANSITION", "{}", late.body);
        assert!(nothing.is_none());
        assert_eq!(user_errors(&again)[0]["code"], "INVALID_TRANSITION");
        // 100 - 30 reserved + 28 released.
        assert_eq!(app.balance_and_ledger(user).await, (98, 98));
    }

    /// Bad input, a short balance, another user's project: each refused at its field with
    /// nothing written.
    async fn a_bad_or_unaffordable_job_is_refused_and_writes_nothing(t) {
        let app = TestApp::new(t).await;
        let (user, token, project) = owner(&app, "careful@example.com").await;
        let (_, _, other_project) = owner(&app, "other@example.com").await;
        let base = json!({ "projectId": project, "name": "cats", "keywords": ["cat"], "maxImages": 10 });
        let with = |patch: Value| {
            let mut input = base.clone();
            for (k, v) in patch.as_object().unwrap() {
                input[k] = v.clone();
            }
            json!({ "i": input })
        };
        let cases = [
            (with(json!({ "maxImages": 0 })), vec!["input", "maxImages"], "INVALID"),
            (with(json!({ "maxImages": 101 })), vec!["input", "maxImages"], "INSUFFICIENT_CREDITS"),
            (with(json!({ "config": { "startUrls": ["ftp://x.test"] } })), vec!["input", "config", "startUrls"], "INVALID"),
            (with(json!({ "config": { "depth": 3 } })), vec!["input", "config", "depth"], "INVALID"),
            (with(json!({ "keywords": [] })), vec!["input", "keywords"], "INVALID"),
            (with(json!({ "projectId": other_project })), vec!["input", "projectId"], "NOT_FOUND"),
        ];

        for (input, field, code) in cases {
            let reply = app.graphql(Some(&token), CREATE, input.clone()).await;
            let errors = user_errors(&reply);
            assert_eq!((errors[0]["field"].clone(), errors[0]["code"].clone()), (json!(field), json!(code)), "{input}: {}", reply.body);
        }
        let jobs = app.query("{ crawlJobs { totalCount } crawlChunks { totalCount } }", json!({})).await;
        assert_eq!(jobs.data()["crawlJobs"]["totalCount"], 0);
        assert_eq!(jobs.data()["crawlChunks"]["totalCount"], 0);
        assert_eq!(app.balance_and_ledger(user).await, (100, 100));
    }

    /// A WORKER key claims only its own user's chunks.
    async fn a_worker_key_claims_only_its_users_chunks(t) {
        let app = TestApp::new(t).await;
        let (_, token, project) = owner(&app, "keyed@example.com").await;
        let (_, other_token, other_project) = owner(&app, "unkeyed@example.com").await;
        let other_job = job(&app, &other_token, &other_project, 10, 10).await;
        let key = app
            .graphql(Some(&token), "mutation { apiKeyCreate(input: {name: \"crawler\", scopes: [WORKER]}) { secret } }", json!({}))
            .await;
        let secret = key.data()["apiKeyCreate"]["secret"].as_str().unwrap().to_owned();
        let with_key = |body: Value| {
            axum::http::Request::post("/graphql")
                .header("content-type", "application/json")
                .header("x-api-key", secret.clone())
                .body(axum::body::Body::from(body.to_string()))
                .unwrap()
        };

        let others = app.send(with_key(json!({ "query": CLAIM, "variables": { "i": {} } }))).await;
        let own_job = job(&app, &token, &project, 10, 10).await;
        let own = app.send(with_key(json!({ "query": CLAIM, "variables": { "i": {} } }))).await;

        assert!(others.data()["m"]["crawlChunk"].is_null(), "{}", others.body);
        assert!(own.data()["m"]["crawlChunk"]["id"].is_string(), "{}", own.body);
        assert_eq!(state(&app, &other_job).await["status"], "pending");
        assert_eq!(state(&app, &own_job).await["status"], "running");
    }
}
