//! Per-shop retention of storefront `events`: each shop keeps its own
//! `data_retention_days`, a monthly partition goes only when no shop keeps anything in it,
//! and a shop uninstalled longer ago than its retention is purged.

use chrono::{Datelike as _, Duration, Months, TimeZone as _, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::common::app::TestApp;
use crate::common::{TestDb, fixtures, on_both_backends};

use api::ops::partitions::{Upkeep, upkeep};
use api::ops::retention::Retained;

const SETTINGS: &str = "mutation($i: ShopUpdateSettingsInput!) { m: shopUpdateSettings(input: $i) { userErrors { field code } } }";

/// Sets `domain`'s `data_retention_days` as the shop would, through `shopUpdateSettings`.
async fn keep_days(app: &TestApp, domain: &str, days: i64) {
    let reply = app
        .graphql(
            Some(&TestApp::shop_token(domain)),
            SETTINGS,
            json!({ "i": { "dataRetentionDays": days } }),
        )
        .await;
    assert_eq!(reply.data()["m"]["userErrors"], json!([]), "{}", reply.body);
}

/// The event types of `shop`, sorted.
async fn kinds(t: &TestDb, shop: Uuid) -> Vec<String> {
    t.query(
        "SELECT event_type FROM events WHERE shop_id = $1 ORDER BY event_type",
        vec![shop.into()],
    )
    .await
    .iter()
    .map(|r| r.try_get("", "event_type").unwrap())
    .collect()
}

/// An event of `shop` this many days old, named by its age.
async fn aged(t: &TestDb, shop: Uuid, days: i64) {
    fixtures::event(
        &t.db,
        shop,
        &format!("d{days:03}"),
        Utc::now() - Duration::days(days),
    )
    .await;
}

async fn uninstalled_days_ago(t: &TestDb, shop: Uuid, days: i64) {
    t.execute(
        "UPDATE shops SET uninstalled_at = $1 WHERE id = $2",
        vec![(Utc::now() - Duration::days(days)).into(), shop.into()],
    )
    .await
    .unwrap();
}

async fn shop_ids(t: &TestDb) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = t
        .query("SELECT id FROM shops", vec![])
        .await
        .iter()
        .map(|r| r.try_get("", "id").unwrap())
        .collect();
    ids.sort();
    ids
}

on_both_backends! {
    /// A shop keeping 30 days loses its 40-day-old events; one on the default 90 keeps
    /// them and loses only what is older than 90 days.
    async fn each_shop_keeps_events_for_its_own_retention(t) {
        let app = TestApp::new(t).await;
        let t = &app.t;
        let short = fixtures::shop(&t.db, "short.myshopify.com").await;
        let default = fixtures::shop(&t.db, "default.myshopify.com").await;
        keep_days(&app, "short.myshopify.com", 30).await;
        for days in [5, 40] {
            aged(t, short, days).await;
        }
        for days in [5, 40, 100] {
            aged(t, default, days).await;
        }

        let (first, _) = upkeep(&t.db, 90).await.unwrap();
        let (again, _) = upkeep(&t.db, 90).await.unwrap();

        assert_eq!(kinds(t, short).await, ["d005"]);
        assert_eq!(kinds(t, default).await, ["d005", "d040"]);
        assert_eq!(first, Upkeep { made: 0, retained: Retained { dropped: 0, deleted: 2, purged: 0 } });
        assert_eq!(again, Upkeep::default());
    }

    /// More old events than one delete statement takes go, chunk by chunk, and the young
    /// ones stay.
    async fn more_old_events_than_a_chunk_are_deleted_in_chunks(t) {
        let t = t.migrated().await;
        let shop = fixtures::shop(&t.db, "busy.myshopify.com").await;
        let n = api::ops::retention::CHUNK * 2 + 7;
        let insert = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
            INSERT INTO events (anon_id, session_id, event_type, ts, shop_id) SELECT 'a', 's', 'old', $2, $3 FROM n";
        let old = Utc::now() - Duration::days(200);
        t.execute(insert, vec![i64::try_from(n).unwrap().into(), old.into(), shop.into()]).await.unwrap();
        aged(&t, shop, 1).await;

        let (done, _) = upkeep(&t.db, 90).await.unwrap();

        assert_eq!(done.retained.deleted, n);
        assert_eq!(kinds(&t, shop).await, ["d001"]);
    }

    /// An uninstalled shop keeps everything until its retention has passed since the
    /// uninstall, then its row and what it owns are gone; re-installing in time keeps it.
    async fn an_uninstalled_shop_is_purged_once_its_retention_has_passed(t) {
        let app = TestApp::new(t).await;
        let t = &app.t;
        let recent = fixtures::shop(&t.db, "recent.myshopify.com").await;
        let expired = fixtures::shop(&t.db, "expired.myshopify.com").await;
        let on_default = fixtures::shop(&t.db, "slow.myshopify.com").await;
        let installed = fixtures::shop(&t.db, "live.myshopify.com").await;
        for domain in ["recent.myshopify.com", "expired.myshopify.com"] {
            keep_days(&app, domain, 30).await;
        }
        for shop in [recent, expired, on_default, installed] {
            aged(t, shop, 1).await;
            fixtures::product(&t.db, shop, "p-1").await;
        }
        uninstalled_days_ago(t, recent, 29).await;
        uninstalled_days_ago(t, expired, 31).await;
        uninstalled_days_ago(t, on_default, 60).await;

        let (done, writes) = upkeep(&t.db, 90).await.unwrap();

        let mut left = vec![recent, on_default, installed];
        left.sort();
        assert_eq!(shop_ids(t).await, left);
        assert_eq!(done.retained, Retained { dropped: 0, deleted: 1, purged: 1 });
        assert!(kinds(t, expired).await.is_empty());
        assert_eq!(kinds(t, recent).await, ["d001"]);
        let products = t.query("SELECT shop_id FROM products WHERE shop_id = $1", vec![expired.into()]).await;
        assert!(products.is_empty());
        let heard: Vec<_> = writes.iter().map(|w| (w.table, w.id)).collect();
        assert_eq!(heard, [("shops", expired)]);
    }

    /// PostgreSQL: an old monthly partition stays while one shop still keeps its rows
    /// (the others' rows in it are deleted), and goes once no shop does.
    async fn a_partition_is_dropped_only_when_no_shop_needs_it(t) {
        let app = TestApp::new(t).await;
        let t = &app.t;
        if !t.is_postgres() {
            return;
        }
        let long = fixtures::shop(&t.db, "long.myshopify.com").await;
        let brief = fixtures::shop(&t.db, "brief.myshopify.com").await;
        keep_days(&app, "long.myshopify.com", 400).await;
        keep_days(&app, "brief.myshopify.com", 30).await;
        let old = Utc::now() - Duration::days(150);
        let start = Utc.with_ymd_and_hms(old.year(), old.month(), 1, 0, 0, 0).unwrap();
        let end = start.checked_add_months(Months::new(1)).unwrap();
        let name = start.format("events_%Y_%m").to_string();
        t.execute(&format!("CREATE TABLE {name} PARTITION OF events FOR VALUES FROM ('{}') TO ('{}')", start.to_rfc3339(), end.to_rfc3339()), vec![])
            .await
            .unwrap();
        for shop in [long, brief] {
            fixtures::event(&t.db, shop, "old", old).await;
        }
        let exists = || async {
            let rows = t.query("SELECT to_regclass($1)::text AS part", vec![name.clone().into()]).await;
            rows[0].try_get::<Option<String>>("", "part").unwrap().is_some()
        };

        let (needed, _) = upkeep(&t.db, 90).await.unwrap();
        let kept = (exists().await, kinds(t, long).await, kinds(t, brief).await);
        keep_days(&app, "long.myshopify.com", 60).await;
        let (unneeded, _) = upkeep(&t.db, 90).await.unwrap();

        assert_eq!(kept, (true, vec!["old".to_owned()], vec![]));
        assert_eq!(needed.retained, Retained { dropped: 0, deleted: 1, purged: 0 });
        assert!(!exists().await);
        assert_eq!(unneeded.retained, Retained { dropped: 1, deleted: 0, purged: 0 });
        assert!(kinds(t, long).await.is_empty());
    }
}
