//! Experiments driven by the shop's admin: checked allocations, a lifecycle that refuses
//! illegal moves, and patches rolled back only from the latest.

use serde_json::{Value, json};

use crate::common::app::{Reply, TestApp};
use crate::common::server::{Client, Server};
use crate::common::{fixtures, on_both_backends};

fn user_errors(reply: &Reply) -> Value {
    reply.data()["m"]["userErrors"].clone()
}

/// Runs workflow `name` on row `id` as `token`, selecting `selection` and userErrors.
async fn on_row(app: &TestApp, token: &str, name: &str, selection: &str, id: &str) -> Reply {
    let mut input = name.to_owned();
    input[..1].make_ascii_uppercase();
    let query = format!(
        "mutation($i: {input}Input!) {{ m: {name}(input: $i) {{ {selection} userErrors {{ field code message }} }} }}"
    );
    app.graphql(Some(token), &query, json!({ "i": { "id": id } }))
        .await
}

async fn move_experiment(app: &TestApp, token: &str, name: &str, id: &str) -> Reply {
    on_row(
        app,
        token,
        name,
        "experiment { status startedAt endedAt }",
        id,
    )
    .await
}

const WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A running experiment of `shop`, started `days` ago, with these guardrails.
async fn running_since(
    t: &crate::common::TestDb,
    shop: uuid::Uuid,
    status: &str,
    days: i64,
    guardrails: Value,
) -> uuid::Uuid {
    let started = chrono::Utc::now() - chrono::Duration::days(days);
    fixtures::row(
        &t.db,
        "experiments",
        vec![
            ("name", format!("{status} {days}d").into()),
            ("target", "product_page:cta".into()),
            ("allocation", json!({ "control": 0.5, "b": 0.5 }).into()),
            ("variants", json!({ "control": {}, "b": {} }).into()),
            ("status", status.into()),
            ("started_at", started.into()),
            ("guardrails", guardrails.into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

const PATCH: &str = "mutation($i: PatchApplyInput!) { m: patchApply(input: $i) { patch { id version } userErrors { field code message } } }";
const ROLLBACK: &str = "mutation($i: PatchRollbackInput!) { m: patchRollback(input: $i) { patch { id version payload } userErrors { field code message } } }";

on_both_backends! {
    /// Allocations must sum to 1 with a control; the lifecycle takes only its moves.
    async fn an_experiment_is_checked_and_moves_only_along_its_lifecycle(t) {
        let app = TestApp::new(t).await;
        let domain = "lab.myshopify.com";
        let shop = fixtures::shop(&app.t.db, domain).await;
        let token = TestApp::shop_token(domain);
        let create = "mutation($i: ExperimentCreateInput!) { m: experimentCreate(input: $i) { experiment { id status } userErrors { field code message } } }";
        let base = json!({ "name": "cta", "target": "product_page:cta", "variants": { "control": {}, "b": {} } });
        let with = |allocation: Value| {
            let mut input = base.clone();
            input["allocation"] = allocation;
            json!({ "i": input })
        };

        let short = app.graphql(Some(&token), create, with(json!({ "control": 0.5, "b": 0.4 }))).await;
        let no_control = app.graphql(Some(&token), create, with(json!({ "a": 0.5, "b": 0.5 }))).await;
        let made = app.graphql(Some(&token), create, with(json!({ "control": 0.5, "b": 0.5 }))).await;
        let id = made.data()["m"]["experiment"]["id"].as_str().unwrap().to_owned();
        let set_status = app
            .graphql(Some(&token), "mutation($id: ID!) { m: experimentUpdate(id: $id, input: {status: \"running\"}) { userErrors { field code } } }", json!({ "id": id }))
            .await;
        let early_pause = move_experiment(&app, &token, "experimentPause", &id).await;
        let started = move_experiment(&app, &token, "experimentStart", &id).await;
        let paused = move_experiment(&app, &token, "experimentPause", &id).await;
        let resumed = move_experiment(&app, &token, "experimentStart", &id).await;
        let completed = move_experiment(&app, &token, "experimentComplete", &id).await;
        let restarted = move_experiment(&app, &token, "experimentStart", &id).await;
        let mismatched = fixtures::experiment(&app.t.db, shop, "mismatch").await;
        app.t.execute("UPDATE experiments SET variants = $1 WHERE id = $2", vec![json!({ "control": {}, "c": {} }).into(), mismatched.into()]).await.unwrap();
        let refused_start = move_experiment(&app, &token, "experimentStart", &format!("gid://stratix/Experiment/{mismatched}")).await;

        for reply in [&short, &no_control] {
            assert_eq!(user_errors(reply)[0]["field"], json!(["input", "allocation"]), "{}", reply.body);
            assert_eq!(user_errors(reply)[0]["code"], "INVALID");
        }
        assert!(set_status.body["errors"].is_array(), "status is not the client's to set: {}", set_status.body);
        assert_eq!(user_errors(&early_pause)[0]["code"], "INVALID_TRANSITION");
        for (reply, status) in [(&started, "running"), (&paused, "paused"), (&resumed, "running"), (&completed, "completed")] {
            assert_eq!(user_errors(reply), json!([]), "{}", reply.body);
            assert_eq!(reply.data()["m"]["experiment"]["status"], status);
        }
        assert_eq!(started.data()["m"]["experiment"]["startedAt"], resumed.data()["m"]["experiment"]["startedAt"]);
        assert!(completed.data()["m"]["experiment"]["endedAt"].is_string());
        assert_eq!(user_errors(&restarted)[0]["code"], "INVALID_TRANSITION");
        assert_eq!(user_errors(&refused_start)[0]["code"], "INVALID", "{}", refused_start.body);
    }

    /// Patches of a target are numbered; a rollback restores with a new patch, marks the
    /// old one, and only the latest can be rolled back; another shop's patch is not found.
    async fn patches_roll_back_only_from_the_latest_and_never_delete(t) {
        let app = TestApp::new(t).await;
        fixtures::shop(&app.t.db, "patch.myshopify.com").await;
        fixtures::shop(&app.t.db, "else.myshopify.com").await;
        let token = TestApp::shop_token("patch.myshopify.com");
        let other = TestApp::shop_token("else.myshopify.com");
        let mut patches = Vec::new();
        for title in ["Bold hat", "Bolder hat"] {
            let input = json!({ "i": { "appliedTo": "product:1:title", "payload": { "title": title }, "rollbackPayload": { "title": "Hat" } } });
            let reply = app.graphql(Some(&token), PATCH, input).await;
            assert_eq!(user_errors(&reply), json!([]), "{}", reply.body);
            patches.push(reply.data()["m"]["patch"].clone());
        }

        let not_latest = app.graphql(Some(&token), ROLLBACK, json!({ "i": { "id": patches[0]["id"] } })).await;
        let foreign = app.graphql(Some(&other), ROLLBACK, json!({ "i": { "id": patches[1]["id"] } })).await;
        let rolled = app.graphql(Some(&token), ROLLBACK, json!({ "i": { "id": patches[1]["id"] } })).await;
        let twice = app.graphql(Some(&token), ROLLBACK, json!({ "i": { "id": patches[1]["id"] } })).await;
        let bad = app.graphql(Some(&token), PATCH, json!({ "i": { "appliedTo": "product:1:title", "payload": [1] } })).await;

        assert_eq!((patches[0]["version"].clone(), patches[1]["version"].clone()), (json!(1), json!(2)));
        assert_eq!(user_errors(&not_latest)[0]["code"], "INVALID_TRANSITION", "{}", not_latest.body);
        assert_eq!(user_errors(&foreign)[0]["code"], "NOT_FOUND");
        assert_eq!(user_errors(&rolled), json!([]), "{}", rolled.body);
        assert_eq!(rolled.data()["m"]["patch"]["version"], 3);
        assert_eq!(rolled.data()["m"]["patch"]["payload"], json!({ "title": "Hat" }));
        assert_eq!(user_errors(&twice)[0]["code"], "INVALID_TRANSITION");
        assert_eq!(user_errors(&bad)[0]["field"], json!(["input", "payload"]));
        let all = app.query("{ patches(orderBy: [{field: VERSION}]) { nodes { version rolledBackAt } } }", json!({})).await;
        let marked: Vec<bool> = all.data()["patches"]["nodes"].as_array().unwrap().iter().map(|p| p["rolledBackAt"].is_string()).collect();
        assert_eq!(marked, [false, true, false]);
    }

    /// pending -> accepted -> applied makes a patch of the entity; a dismissed one cannot
    /// be applied; rolling its patch back marks it rolled_back.
    async fn an_accepted_recommendation_becomes_a_patch(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "recs.myshopify.com").await;
        let token = TestApp::shop_token("recs.myshopify.com");
        let recommend = |rule: &'static str| {
            let db = &app.t.db;
            async move {
                let id = fixtures::row(db, "recommendations", vec![
                    ("entity_type", "product".into()), ("entity_id", "42".into()), ("category", "seo".into()),
                    ("rule_id", rule.into()), ("severity", "low".into()), ("rationale", "short title".into()),
                    ("patch_payload", json!({ "title": "A longer title" }).into()), ("shop_id", shop.into()),
                ]).await;
                format!("gid://stratix/Recommendation/{id}")
            }
        };
        let (kept, dropped) = (recommend("title_length").await, recommend("alt_text").await);
        const STATUS: &str = "recommendation { status }";
        let apply = "mutation($i: RecommendationApplyInput!) { m: recommendationApply(input: $i) { patch { id appliedTo payload } userErrors { code } } }";

        let early = app.graphql(Some(&token), apply, json!({ "i": { "id": kept } })).await;
        let accepted = on_row(&app, &token, "recommendationAccept", STATUS, &kept).await;
        let dismissed = on_row(&app, &token, "recommendationDismiss", STATUS, &dropped).await;
        let applied = app.graphql(Some(&token), apply, json!({ "i": { "id": kept } })).await;
        let not_applied = app.graphql(Some(&token), apply, json!({ "i": { "id": dropped } })).await;
        let patch = applied.data()["m"]["patch"]["id"].clone();
        let rolled = app.graphql(Some(&token), ROLLBACK, json!({ "i": { "id": patch } })).await;

        assert_eq!(user_errors(&early)[0]["code"], "INVALID_TRANSITION");
        assert_eq!(accepted.data()["m"]["recommendation"]["status"], "accepted");
        assert_eq!(dismissed.data()["m"]["recommendation"]["status"], "dismissed");
        assert_eq!(applied.data()["m"]["patch"]["appliedTo"], "product:42");
        assert_eq!(applied.data()["m"]["patch"]["payload"], json!({ "title": "A longer title" }));
        assert_eq!(user_errors(&not_applied)[0]["code"], "INVALID_TRANSITION");
        assert_eq!(user_errors(&rolled), json!([]), "{}", rolled.body);
        let statuses = app.query("{ recommendations(orderBy: [{field: RULE_ID}]) { nodes { ruleId status } } }", json!({})).await;
        assert_eq!(statuses.data()["recommendations"]["nodes"], json!([
            { "ruleId": "alt_text", "status": "dismissed" },
            { "ruleId": "title_length", "status": "rolled_back" },
        ]));
    }
}

on_both_backends! {
    /// A refresh writes each variant's posterior from its results; a second one, with
    /// nothing new, writes nothing; a new result changes only what it touches.
    async fn a_results_refresh_writes_each_variants_posterior(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "stats.myshopify.com").await;
        let token = TestApp::shop_token("stats.myshopify.com");
        let experiment = fixtures::experiment(&app.t.db, shop, "cta").await;
        fixtures::shop(&app.t.db, "else.myshopify.com").await;
        fixtures::result(&app.t.db, shop, experiment, "control", None, 5, "50.00").await;
        let b = fixtures::result(&app.t.db, shop, experiment, "b", None, 9, "90.00").await;
        fixtures::result(&app.t.db, shop, experiment, "b", Some("mobile"), 4, "40.00").await;
        let id = format!("gid://stratix/Experiment/{experiment}");
        const REFRESH: &str = "mutation($i: ExperimentResultsRefreshInput!) { m: experimentResultsRefresh(input: $i) { changed userErrors { code } } }";

        let first = app.graphql(Some(&token), REFRESH, json!({ "i": { "id": id } })).await;
        let second = app.graphql(Some(&token), REFRESH, json!({ "i": { "id": id } })).await;
        app.t.execute("UPDATE results_aggregates SET purchase = 12 WHERE id = $1", vec![b.into()]).await.unwrap();
        let third = app.graphql(Some(&token), REFRESH, json!({ "i": { "id": id } })).await;
        let foreign = app.graphql(Some(&TestApp::shop_token("else.myshopify.com")), REFRESH, json!({ "i": { "id": id } })).await;

        assert_eq!(first.data()["m"]["changed"], 2, "{}", first.body);
        assert_eq!(second.data()["m"]["changed"], 0);
        assert_eq!(third.data()["m"]["changed"], 1);
        assert_eq!(foreign.data()["m"]["userErrors"][0]["code"], "NOT_FOUND", "{}", foreign.body);
        let rows = app
            .query("{ resultsAggregates(orderBy: [{field: VARIANT}], filter: {segment: {isNull: true}}) { nodes { variant posterior } } }", json!({}))
            .await;
        let nodes = rows.data()["resultsAggregates"]["nodes"].clone();
        // 12 of 100 against 5 of 100: Beta(13, 89) against Beta(6, 96).
        let b = &nodes[0]["posterior"];
        assert_eq!(nodes[0]["variant"], "b");
        assert_eq!((b["alpha"].clone(), b["beta"].clone()), (json!(13.0), json!(89.0)));
        assert!((b["mean"].as_f64().unwrap() - 13.0 / 102.0).abs() < 1e-12);
        assert!(b["probBeatControl"].as_f64().unwrap() > 0.95, "{b}");
        assert!(b["ciLow"].as_f64().unwrap() < b["mean"].as_f64().unwrap());
        assert_eq!(nodes[1]["posterior"]["probBeatControl"], 0.5);
        let mobile = app.query("{ resultsAggregates(filter: {segment: {eq: \"mobile\"}}) { nodes { posterior } } }", json!({})).await;
        assert!(mobile.data()["resultsAggregates"]["nodes"][0]["posterior"].is_null());
    }

    /// Guardrails are whole numbers in range and nothing else, or the experiment is not
    /// written.
    async fn guardrails_are_checked_when_an_experiment_is_made(t) {
        let app = TestApp::new(t).await;
        fixtures::shop(&app.t.db, "rails.myshopify.com").await;
        let token = TestApp::shop_token("rails.myshopify.com");
        let create = "mutation($i: ExperimentCreateInput!) { m: experimentCreate(input: $i) { experiment { guardrails } userErrors { field code message } } }";
        let with = |guardrails: Value| json!({ "i": { "name": "cta", "target": "product_page:cta", "variants": { "control": {}, "b": {} }, "allocation": { "control": 0.5, "b": 0.5 }, "guardrails": guardrails } });
        let mut refused = Vec::new();
        for bad in [json!({ "max_duration_days": 0 }), json!({ "max_duration_days": 366 }), json!({ "max_duration_days": 2.5 }), json!({ "min_sample": -1 }), json!({ "stop_when": "worse" }), json!([7])] {
            refused.push(app.graphql(Some(&token), create, with(bad)).await);
        }
        let written_after_refusals = app.t.query("SELECT id FROM experiments", vec![]).await.len();

        let made = app.graphql(Some(&token), create, with(json!({ "max_duration_days": 365, "min_sample": 0 }))).await;

        for reply in &refused {
            assert_eq!(user_errors(reply)[0]["field"], json!(["input", "guardrails"]), "{}", reply.body);
            assert_eq!(user_errors(reply)[0]["code"], "INVALID");
        }
        assert_eq!(written_after_refusals, 0);
        assert_eq!(user_errors(&made), json!([]), "{}", made.body);
        assert_eq!(made.data()["m"]["experiment"]["guardrails"], json!({ "max_duration_days": 365, "min_sample": 0 }));
    }

    /// The results refresh completes a running experiment that ran its max_duration_days
    /// and no other; the shop's subscribers hear it.
    async fn max_duration_days_ends_a_running_experiment(t) {
        let t = t.migrated().await;
        let shop = fixtures::shop(&t.db, "limits.myshopify.com").await;
        let token = TestApp::shop_token("limits.myshopify.com");
        let due = running_since(&t, shop, "running", 8, json!({ "max_duration_days": 7 })).await;
        let young = running_since(&t, shop, "running", 8, json!({ "max_duration_days": 30 })).await;
        let paused = running_since(&t, shop, "paused", 8, json!({ "max_duration_days": 7 })).await;
        let unbounded = running_since(&t, shop, "running", 300, json!({})).await;
        let server = Server::start(t.db.clone()).await;
        let mut client = Client::connect(server.addr, false).await;
        client.init(&token).await;
        client.subscribe("rows", "subscription { rowChanged(tables: [EXPERIMENTS]) { op rowId node { ... on Experiment { status } } } }", json!({})).await;
        server.subscribed(1).await;

        api::domains::experiments::refresh_results(&t.db, &server.broker).await.unwrap();
        let heard = client.until("rows", WAIT, |e| e["data"]["rowChanged"]["op"] == "UPDATE").await;
        api::domains::experiments::refresh_results(&t.db, &server.broker).await.unwrap();

        assert_eq!(heard["data"]["rowChanged"]["rowId"], due.to_string(), "{heard}");
        assert_eq!(heard["data"]["rowChanged"]["node"]["status"], "completed");
        let rows = t.query("SELECT id, status, ended_at FROM experiments", vec![]).await;
        let states: std::collections::HashMap<uuid::Uuid, (String, bool)> = rows
            .iter()
            .map(|r| (r.try_get("", "id").unwrap(), (r.try_get("", "status").unwrap(), r.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "ended_at").unwrap().is_some())))
            .collect();
        assert_eq!(states[&due], ("completed".to_owned(), true));
        assert_eq!(states[&young], ("running".to_owned(), false));
        assert_eq!(states[&paused], ("paused".to_owned(), false));
        assert_eq!(states[&unbounded], ("running".to_owned(), false));
    }
}
