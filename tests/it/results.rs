//! Experiment results counted from storefront events (seed 004): exposures and outcomes
//! per variant and segment, each event once, from a watermark that never skips an event
//! committed late.

use std::collections::BTreeMap;

use api::domains::experiments::tally::tally;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::{fixtures, on_both_backends};
use crate::storefront::{experiment_gid, ingest_key, post_events, running_experiment};

/// An event of `anon` at `seconds` from now (negative: in the past).
fn event(id: &str, kind: &str, anon: &str, seconds: i64, props: Value) -> Value {
    let ts = (chrono::Utc::now() + chrono::Duration::seconds(seconds)).to_rfc3339();
    json!({ "id": id, "type": kind, "ts": ts, "anonId": anon, "props": props })
}

/// An exposure of `anon` to `variant` of `experiment`.
fn exposure(id: &str, experiment: Uuid, anon: &str, variant: &str, props: Value) -> Value {
    let mut event = event(id, "exposure", anon, -60, props);
    event["experimentId"] = json!(experiment_gid(experiment));
    event["variant"] = json!(variant);
    event
}

/// `(variant, segment)` -> `[visitors, views, add_to_cart, begin_checkout, purchase]`,
/// revenue.
type Rows = BTreeMap<(String, Option<String>), (Vec<i64>, String)>;

async fn results(app: &TestApp, experiment: Uuid) -> Rows {
    let rows = app
        .t
        .query(
            "SELECT variant, segment, visitors, views, add_to_cart, begin_checkout, purchase, \
             CAST(revenue AS TEXT) FROM results_aggregates WHERE experiment_id = $1",
            vec![experiment.into()],
        )
        .await;
    rows.iter()
        .map(|row| {
            let counts = (2..7)
                .map(|i| i64::from(row.try_get_by_index::<i32>(i).unwrap()))
                .collect();
            let revenue: String = row.try_get_by_index(7).unwrap();
            let cents = revenue.parse::<f64>().unwrap();
            (
                (
                    row.try_get_by_index(0).unwrap(),
                    row.try_get_by_index(1).unwrap(),
                ),
                (counts, format!("{cents:.2}")),
            )
        })
        .collect()
}

fn row(variant: &str, segment: Option<&str>) -> (String, Option<String>) {
    (variant.to_owned(), segment.map(str::to_owned))
}

on_both_backends! {
    /// Exposures add visitors to their variant (and segment); outcomes of exposed visitors
    /// after their exposure count; a visitor converts once however often they buy; each
    /// event counts once, retried or tallied again; another shop's visitors never count.
    async fn events_are_counted_into_results_once(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "tally.myshopify.com").await;
        let other = fixtures::shop(&app.t.db, "other.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let theirs = ingest_key(&app.t, other).await;
        let x = running_experiment(&app, shop, "cta", json!({ "control": 0.5, "b": 0.5 })).await;
        // v5 was assigned through experimentAssign: its recorded variant wins over the
        // exposure's.
        let assigned = app
            .send(crate::storefront::with_key(&key, "mutation($i: ExperimentAssignInput!) { m: experimentAssign(input: $i) { variant } }", json!({ "i": { "experimentId": experiment_gid(x), "anonId": "v5" } })))
            .await;
        let v5 = assigned.data()["m"]["variant"].as_str().unwrap().to_owned();
        let claimed = if v5 == "b" { "control" } else { "b" };
        let first = json!({ "events": [
            exposure("x1", x, "v1", "control", json!({ "device": "mobile" })),
            exposure("x2", x, "v2", "b", json!({})),
            exposure("x3", x, "v3", "b", json!({ "device": "Desktop" })),
            exposure("x1b", x, "v1", "control", json!({ "device": "mobile" })),
            exposure("x5", x, "v5", claimed, json!({})),
            event("p1", "purchase", "v1", -30, json!({ "value": 10 })),
            event("c2", "add_to_cart", "v2", -30, json!({})),
            event("p2", "purchase", "v2", -20, json!({ "value": "20.50" })),
            event("p2b", "purchase", "v2", -10, json!({ "value": 5 })),
            event("w3", "page_view", "v3", -120, json!({})),
            event("w3b", "product_view", "v3", -10, json!({})),
            event("p4", "purchase", "v4", -10, json!({ "value": 99 })),
        ] });
        let sent = app.send(post_events(Some(&key), &first)).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let foreign = app.send(post_events(Some(&theirs), &json!({ "events": [event("f1", "purchase", "v1", -5, json!({ "value": 1000 }))] }))).await;
        assert_eq!(foreign.status, 200, "{}", foreign.body);

        tally(&app.t.db).await.unwrap();
        let counted = results(&app, x).await;
        let mut expected = Rows::new();
        expected.insert(row("control", None), (vec![1, 0, 0, 0, 1], "10.00".into()));
        expected.insert(row("control", Some("mobile")), (vec![1, 0, 0, 0, 1], "10.00".into()));
        expected.insert(row("b", None), (vec![2, 1, 1, 0, 1], "25.50".into()));
        expected.insert(row("b", Some("desktop")), (vec![1, 1, 0, 0, 0], "0.00".into()));
        expected.get_mut(&row(&v5, None)).unwrap().0[0] += 1;
        assert_eq!(counted, expected);

        // Nothing new: nothing changes. A retry and a new purchase: only the purchase.
        tally(&app.t.db).await.unwrap();
        assert_eq!(results(&app, x).await, expected);
        let second = json!({ "events": [first["events"][5].clone(), event("p3", "purchase", "v3", -5, json!({ "value": 7 }))] });
        let sent = app.send(post_events(Some(&key), &second)).await;
        assert_eq!(sent.body, json!({ "stored": 1, "duplicates": 1 }));
        tally(&app.t.db).await.unwrap();
        for segment in [None, Some("desktop")] {
            let (counts, revenue) = expected.get_mut(&row("b", segment)).unwrap();
            counts[4] += 1;
            let cents = revenue.parse::<f64>().unwrap() + 7.0;
            *revenue = format!("{cents:.2}");
        }
        assert_eq!(results(&app, x).await, expected);

        let posteriors = app
            .t
            .query("SELECT variant FROM results_aggregates WHERE experiment_id = $1 AND segment IS NULL AND posterior IS NOT NULL", vec![x.into()])
            .await;
        assert_eq!(posteriors.len(), 2, "each variant's posterior for all visitors");
        let marks = app
            .t
            .query("SELECT variant, exposed_at IS NOT NULL, converted_at IS NOT NULL FROM assignments WHERE anon_id = 'v1' OR anon_id = 'v5' ORDER BY anon_id", vec![])
            .await;
        let marks: Vec<(String, bool, bool)> = marks
            .iter()
            .map(|r| (r.try_get_by_index(0).unwrap(), r.try_get_by_index(1).unwrap(), r.try_get_by_index(2).unwrap()))
            .collect();
        assert_eq!(marks, [("control".to_owned(), true, true), (v5, true, false)]);
    }

    /// A paused experiment's events are not counted, then or later.
    async fn a_paused_experiments_events_are_not_counted(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "paused.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let x = running_experiment(&app, shop, "cta", json!({ "control": 0.5, "b": 0.5 })).await;
        app.t.execute("UPDATE experiments SET status = 'paused' WHERE id = $1", vec![x.into()]).await.unwrap();
        let batch = json!({ "events": [exposure("x1", x, "v1", "b", json!({})), event("p1", "purchase", "v1", -5, json!({}))] });
        assert_eq!(app.send(post_events(Some(&key), &batch)).await.status, 200);

        tally(&app.t.db).await.unwrap();
        app.t.execute("UPDATE experiments SET status = 'running' WHERE id = $1", vec![x.into()]).await.unwrap();
        tally(&app.t.db).await.unwrap();

        assert!(results(&app, x).await.is_empty());
    }
}

on_both_backends! {
    /// Many batches at once while the counting runs: every exposure is counted exactly
    /// once.
    async fn concurrent_batches_are_each_counted_once(t) {
        let app = TestApp::new(t).await;
        let shop = fixtures::shop(&app.t.db, "busy.myshopify.com").await;
        let key = ingest_key(&app.t, shop).await;
        let x = running_experiment(&app, shop, "cta", json!({ "control": 0.5, "b": 0.5 })).await;
        let (writers, batches, size) = (6, 5, 100);

        let sending = futures_util::future::join_all((0..writers).map(|w| {
            let (app, key) = (&app, &key);
            async move {
                for b in 0..batches {
                    let events: Vec<Value> = (0..size)
                        .map(|i| {
                            let variant = if i % 2 == 0 { "control" } else { "b" };
                            exposure(&format!("{w}-{b}-{i}"), x, &format!("v{w}-{b}-{i}"), variant, json!({}))
                        })
                        .collect();
                    let sent = app.send(post_events(Some(key), &json!({ "events": events }))).await;
                    assert_eq!(sent.status, 200, "{}", sent.body);
                }
            }
        }));
        let counting = async {
            for _ in 0..20 {
                tally(&app.t.db).await.unwrap();
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(sending, counting);
        tally(&app.t.db).await.unwrap();

        let counted = results(&app, x).await;
        let visitors: i64 = counted.values().map(|(counts, _)| counts[0]).sum();
        assert_eq!(visitors, writers * batches * size);
        assert_eq!(counted[&row("control", None)].0[0], writers * batches * size / 2);
    }
}

/// A batch still in flight holds the counting back: its events, numbered before a batch
/// that commits first, are counted once it commits, never passed over.
#[tokio::test]
async fn the_counting_waits_for_a_batch_in_flight() {
    use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};
    let Some(t) = crate::common::TestDb::postgres().await else {
        return;
    };
    let app = TestApp::new(t).await;
    let shop = fixtures::shop(&app.t.db, "late.myshopify.com").await;
    let key = ingest_key(&app.t, shop).await;
    let x = running_experiment(&app, shop, "cta", json!({ "control": 0.5, "b": 0.5 })).await;

    // A batch that has its numbers but has not committed.
    let late = app.t.db.begin().await.unwrap();
    api::domains::shopify::sequence::number(&late)
        .await
        .unwrap();
    late.execute_raw(Statement::from_sql_and_values(
        sea_orm::DbBackend::Postgres,
        "INSERT INTO events (shop_id, anon_id, session_id, event_type, ts, experiment_id, variant) \
         VALUES ($1, 'late', '', 'exposure', now(), $2, 'b')",
        vec![shop.into(), x.to_string().into()],
    ))
    .await
    .unwrap();
    // A later batch commits first.
    let early = json!({ "events": [exposure("e1", x, "early", "control", json!({}))] });
    assert_eq!(app.send(post_events(Some(&key), &early)).await.status, 200);

    let db = app.t.db.clone();
    let counting = tokio::spawn(async move { tally(&db).await.unwrap() });
    // The counting waits for the gate while the late batch holds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let waiting = app
            .t
            .query(
                "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                vec![],
            )
            .await[0]
            .try_get_by_index::<i64>(0)
            .unwrap();
        if waiting == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the counting did not wait for the batch in flight"
        );
        tokio::task::yield_now().await;
    }
    late.commit().await.unwrap();
    counting.await.unwrap();
    tally(&app.t.db).await.unwrap();

    let counted = results(&app, x).await;
    assert_eq!(counted[&row("control", None)].0[0], 1);
    assert_eq!(
        counted[&row("b", None)].0[0],
        1,
        "the late batch's visitor is counted"
    );
}
