//! The two Shopify apps end to end, as their embedded admin and storefront drive them.
//! Seed 000: install -> signed product webhook -> AI content revisions -> publish ->
//! restore. Seed 004, on a real port: install -> experiment -> storefront assignment and
//! events -> results counted -> posterior heard by a subscriber -> recommendation -> patch
//! -> rollback. Another shop, installed beside it, sees none of it at any step.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::common::app::{Reply, SHOPIFY_SECRET, TestApp};
use crate::common::on_both_backends;
use crate::common::server::{Client, Server};

const INSTALL: &str = "mutation($i: ShopInstallInput!) { m: shopInstall(input: $i) { shop { id } userErrors { field code message } } }";
const REVISE: &str = "mutation($i: ContentRevisionCreateInput!) { m: contentRevisionCreate(input: $i) { contentRevision { id version content } userErrors { field code message } } }";
const PUBLISH: &str = "mutation($i: ContentRevisionPublishInput!) { m: contentRevisionPublish(input: $i) { product { description } userErrors { field code message } } }";
const RESTORE: &str = "mutation($i: ContentRevisionRestoreInput!) { m: contentRevisionRestore(input: $i) { contentRevision { version content } userErrors { field code message } } }";
const CONTENT_SEEN: &str =
    "{ shops { totalCount } products { totalCount } contentRevisions { totalCount } }";

const CREATE_EXPERIMENT: &str = "mutation($i: ExperimentCreateInput!) { m: experimentCreate(input: $i) { experiment { id } userErrors { field code message } } }";
const START: &str = "mutation($i: ExperimentStartInput!) { m: experimentStart(input: $i) { experiment { status } userErrors { field code message } } }";
const ASSIGN: &str = "mutation($i: ExperimentAssignInput!) { m: experimentAssign(input: $i) { variant userErrors { field code message } } }";
const ACCEPT: &str = "mutation($i: RecommendationAcceptInput!) { m: recommendationAccept(input: $i) { recommendation { status } userErrors { field code message } } }";
const APPLY: &str = "mutation($i: RecommendationApplyInput!) { m: recommendationApply(input: $i) { patch { id version payload } userErrors { field code message } } }";
const ROLLBACK: &str = "mutation($i: PatchRollbackInput!) { m: patchRollback(input: $i) { patch { version payload } userErrors { field code message } } }";
const EXPERIMENTS_SEEN: &str = "{ shops { totalCount } experiments { totalCount } assignments { totalCount } events { totalCount } resultsAggregates { totalCount } recommendations { totalCount } patches { totalCount } }";

fn user_errors(reply: &Value) -> Value {
    reply["data"]["m"]["userErrors"].clone()
}

/// Installs `domain` as the app's backend does (service_role).
async fn install(send: impl AsyncFn(Option<&str>, &str, Value) -> Value, domain: &str) {
    let input = json!({ "i": { "domain": domain, "accessToken": format!("shpat_{domain}"), "scope": "read_products,write_products", "plan": "growth" } });
    let reply = send(Some(&TestApp::service()), INSTALL, input).await;
    assert_eq!(user_errors(&reply), json!([]), "{reply}");
}

/// Every `totalCount` of a reply, by field.
fn counts(reply: &Value) -> Vec<(String, i64)> {
    reply["data"]
        .as_object()
        .unwrap_or_else(|| panic!("{reply}"))
        .iter()
        .map(|(k, v)| (k.clone(), v["totalCount"].as_i64().unwrap()))
        .collect()
}

/// Shopify's delivery of `topic` for `domain`, signed with the app's secret.
fn shopify_webhook(
    domain: &str,
    topic: &str,
    id: &str,
    body: &Value,
) -> axum::http::Request<axum::body::Body> {
    let body = body.to_string();
    let digest = api::webhooks::digest(SHOPIFY_SECRET, body.as_bytes());
    axum::http::Request::post("/webhooks/shopify")
        .header("content-type", "application/json")
        .header(
            "x-shopify-hmac-sha256",
            base64::engine::general_purpose::STANDARD.encode(digest),
        )
        .header("x-shopify-topic", topic)
        .header("x-shopify-webhook-id", id)
        .header("x-shopify-shop-domain", domain)
        .body(axum::body::Body::from(body))
        .unwrap()
}

/// A storefront request with the shop's ingest key.
fn storefront(key: &str, path: &str, body: &Value) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::post(path)
        .header("content-type", "application/json")
        .header("x-stratix-ingest-key", key)
        .body(axum::body::Body::from(body.to_string()))
        .unwrap()
}

on_both_backends! {
    async fn an_ai_content_app_goes_from_install_to_published_content(t) {
        let app = TestApp::new(t).await;
        let graphql = async |token: Option<&str>, query: &str, variables: Value| -> Value {
            app.graphql(token, query, variables).await.body
        };
        let (domain, stranger) = ("content.myshopify.com", "stranger.myshopify.com");
        install(&graphql, domain).await;
        install(&graphql, stranger).await;
        let (admin, other) = (TestApp::shop_token(domain), TestApp::shop_token(stranger));
        let stranger_sees = async || counts(&graphql(Some(&other), CONTENT_SEEN, json!({})).await);
        let nothing_but_itself = counts(&json!({ "data": {
            "shops": { "totalCount": 1 }, "products": { "totalCount": 0 }, "contentRevisions": { "totalCount": 0 },
        } }));

        // Shopify tells the app about a product; the admin lists it.
        let product = json!({ "id": 7_001, "title": "Wool Hat", "handle": "wool-hat", "body_html": "<p>A hat.</p>" });
        let delivered: Reply = app.send(shopify_webhook(domain, "products/create", "w-1", &product)).await;
        assert_eq!(delivered.status, 200, "{}", delivered.body);
        let listed = graphql(Some(&admin), "{ products { nodes { id title shopifyId } } }", json!({})).await;
        let node = &listed["data"]["products"]["nodes"][0];
        assert_eq!(node["title"], "Wool Hat", "{listed}");
        let product_id = node["id"].clone();
        assert_eq!(stranger_sees().await, nothing_but_itself);

        // The AI writes two drafts; the merchant publishes the second, then restores the first.
        let mut revisions = Vec::new();
        for content in ["Warm merino hat.", "A warm merino hat, knitted in Wales."] {
            let made = graphql(Some(&admin), REVISE, json!({ "i": { "productId": product_id, "content": content } })).await;
            assert_eq!(user_errors(&made), json!([]), "{made}");
            revisions.push(made["data"]["m"]["contentRevision"].clone());
        }
        assert_eq!((revisions[0]["version"].clone(), revisions[1]["version"].clone()), (json!(1), json!(2)));
        let foreign_publish = graphql(Some(&other), PUBLISH, json!({ "i": { "id": revisions[1]["id"] } })).await;
        assert_eq!(user_errors(&foreign_publish)[0]["code"], "NOT_FOUND", "{foreign_publish}");
        let published = graphql(Some(&admin), PUBLISH, json!({ "i": { "id": revisions[1]["id"] } })).await;
        assert_eq!(published["data"]["m"]["product"]["description"], "A warm merino hat, knitted in Wales.", "{published}");
        let restored = graphql(Some(&admin), RESTORE, json!({ "i": { "id": revisions[0]["id"] } })).await;
        assert_eq!(restored["data"]["m"]["contentRevision"], json!({ "version": 3, "content": "Warm merino hat." }), "{restored}");

        // The history is whole; the other shop saw nothing of it.
        let history = graphql(Some(&admin), "{ contentRevisions(orderBy: [{field: VERSION}]) { nodes { version } } }", json!({})).await;
        assert_eq!(history["data"]["contentRevisions"]["nodes"], json!([{ "version": 1 }, { "version": 2 }, { "version": 3 }]));
        assert_eq!(stranger_sees().await, nothing_but_itself);
    }

    async fn a_conversion_experiment_goes_from_events_to_a_rolled_back_patch(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let graphql = async |token: Option<&str>, query: &str, variables: Value| -> Value {
            server.graphql(token, query, variables).await
        };
        let (domain, stranger) = ("lab.myshopify.com", "stranger.myshopify.com");
        install(&graphql, domain).await;
        install(&graphql, stranger).await;
        let (admin, other) = (TestApp::shop_token(domain), TestApp::shop_token(stranger));
        let key_rows = t.query("SELECT ingest_key FROM shops WHERE domain = $1", vec![domain.into()]).await;
        let key: String = key_rows[0].try_get_by_index(0).unwrap();
        let stranger_sees = async || counts(&graphql(Some(&other), EXPERIMENTS_SEEN, json!({})).await);
        let nothing_but_itself: Vec<(String, i64)> = counts(&json!({ "data": {
            "assignments": { "totalCount": 0 }, "events": { "totalCount": 0 }, "experiments": { "totalCount": 0 },
            "patches": { "totalCount": 0 }, "recommendations": { "totalCount": 0 },
            "resultsAggregates": { "totalCount": 0 }, "shops": { "totalCount": 1 },
        } }));

        // The merchant sets up and starts an experiment, and watches its results.
        let input = json!({ "i": { "name": "Sticky CTA", "target": "product_page:cta", "allocation": { "control": 0.5, "sticky": 0.5 }, "variants": { "control": {}, "sticky": { "copy": "Add to bag" } } } });
        let made = graphql(Some(&admin), CREATE_EXPERIMENT, input).await;
        assert_eq!(user_errors(&made), json!([]), "{made}");
        let experiment = made["data"]["m"]["experiment"]["id"].as_str().unwrap().to_owned();
        let started = graphql(Some(&admin), START, json!({ "i": { "id": experiment } })).await;
        assert_eq!(started["data"]["m"]["experiment"]["status"], "running", "{started}");
        let mut watcher = Client::connect(server.addr, false).await;
        watcher.init(&admin).await;
        watcher.subscribe("r", "subscription($id: ID!) { experimentResultsUpdated(experimentId: $id) { node { ... on ResultsAggregate { variant segment visitors purchase posterior } } } }", json!({ "id": experiment })).await;
        server.subscribed(1).await;
        assert_eq!(stranger_sees().await, nothing_but_itself);

        // The storefront: 40 visitors assigned and exposed; the sticky variant's buy more.
        let mut events = Vec::new();
        let ts = (chrono::Utc::now() - chrono::Duration::seconds(30)).to_rfc3339();
        for n in 0..40 {
            let anon = format!("visitor-{n}");
            let (status, reply) = server.send(storefront(&key, "/graphql", &json!({ "query": ASSIGN, "variables": { "i": { "experimentId": experiment, "anonId": anon } } }))).await;
            assert_eq!(status, 200, "{reply}");
            let variant = reply["data"]["m"]["variant"].as_str().unwrap_or_else(|| panic!("{reply}")).to_owned();
            events.push(json!({ "id": format!("x-{n}"), "type": "exposure", "ts": ts, "anonId": anon, "experimentId": experiment, "variant": variant }));
            if variant == "sticky" || n % 4 == 0 {
                events.push(json!({ "id": format!("p-{n}"), "type": "purchase", "ts": ts, "anonId": anon, "props": { "value": 25 } }));
            }
        }
        let (status, stored) = server.send(storefront(&key, "/events", &json!({ "events": events }))).await;
        assert_eq!((status, stored["duplicates"].clone()), (200, json!(0)), "{stored}");

        // `stratix serve`'s refresher counts them; the watcher hears each variant's posterior.
        let counted = api::domains::experiments::tally::tally(&t.db).await.unwrap();
        server.publish(&t, counted);
        let heard = watcher
            .until("r", Duration::from_secs(10), |e| {
                let node = &e["data"]["experimentResultsUpdated"]["node"];
                node["variant"] == "sticky" && node["segment"].is_null() && node["posterior"]["probBeatControl"].is_number()
            })
            .await;
        let sticky = &heard["data"]["experimentResultsUpdated"]["node"];
        assert!(sticky["posterior"]["probBeatControl"].as_f64().unwrap() > 0.9, "{heard}");
        let read = graphql(Some(&admin), "{ resultsAggregates(filter: {segment: {isNull: true}}) { nodes { visitors purchase } } }", json!({})).await;
        let visitors: i64 = read["data"]["resultsAggregates"]["nodes"].as_array().unwrap().iter().map(|n| n["visitors"].as_i64().unwrap()).sum();
        assert_eq!(visitors, 40, "{read}");
        assert_eq!(stranger_sees().await, nothing_but_itself);

        // A recommendation from the results becomes a patch, which the merchant rolls back.
        let rows = t.query("SELECT id FROM shops WHERE domain = $1", vec![domain.into()]).await;
        let shop: uuid::Uuid = rows[0].try_get_by_index(0).unwrap();
        let recommendation = crate::common::fixtures::row(&t.db, "recommendations", vec![
            ("entity_type", "theme".into()), ("entity_id", "cta".into()), ("category", "copy".into()),
            ("rule_id", "experiment_winner".into()), ("severity", "medium".into()),
            ("rationale", "The sticky CTA converts better".into()),
            ("patch_payload", json!({ "copy": "Add to bag" }).into()), ("shop_id", shop.into()),
        ]).await;
        let recommendation = format!("gid://stratix/Recommendation/{recommendation}");
        let foreign_accept = graphql(Some(&other), ACCEPT, json!({ "i": { "id": recommendation } })).await;
        assert_eq!(user_errors(&foreign_accept)[0]["code"], "NOT_FOUND", "{foreign_accept}");
        let accepted = graphql(Some(&admin), ACCEPT, json!({ "i": { "id": recommendation } })).await;
        assert_eq!(accepted["data"]["m"]["recommendation"]["status"], "accepted", "{accepted}");
        let applied = graphql(Some(&admin), APPLY, json!({ "i": { "id": recommendation } })).await;
        assert_eq!(user_errors(&applied), json!([]), "{applied}");
        let patch = applied["data"]["m"]["patch"].clone();
        assert_eq!((patch["version"].clone(), patch["payload"].clone()), (json!(1), json!({ "copy": "Add to bag" })));
        let rolled = graphql(Some(&admin), ROLLBACK, json!({ "i": { "id": patch["id"] } })).await;
        assert_eq!(user_errors(&rolled), json!([]), "{rolled}");
        assert_eq!(rolled["data"]["m"]["patch"]["version"], 2);
        let state = graphql(Some(&admin), "{ recommendations { nodes { status } } patches(orderBy: [{field: VERSION}]) { nodes { version rolledBackAt } } }", json!({})).await;
        assert_eq!(state["data"]["recommendations"]["nodes"], json!([{ "status": "rolled_back" }]), "{state}");
        let marked: Vec<bool> = state["data"]["patches"]["nodes"].as_array().unwrap().iter().map(|p| p["rolledBackAt"].is_string()).collect();
        assert_eq!(marked, [true, false]);
        assert_eq!(stranger_sees().await, nothing_but_itself);
    }
}
