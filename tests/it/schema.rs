//! The foundation: migrations, `stratix check`, constraints, and the database's own
//! behaviour (updated_at, new-user effects, partitions).

use std::collections::{BTreeMap, BTreeSet};

use api::ops::check;
use migration::catalog::{CRITICAL_INDEXES, TABLES};
use migration::{Migrator, MigratorTrait, introspect};
use sea_orm::sea_query::StringLen;
use sea_orm::{ColumnType, Value};
use uuid::Uuid;

use crate::common::{TestDb, on_both_backends};

/// Inserts a user by email and returns its id (the database fills everything else).
async fn insert_user(t: &TestDb, email: &str) -> Uuid {
    let id = Uuid::new_v4();
    t.execute(
        "INSERT INTO users (id, email) VALUES ($1, $2)",
        vec![id.into(), email.into()],
    )
    .await
    .unwrap();
    id
}

async fn count(t: &TestDb, sql: &str, values: Vec<Value>) -> i64 {
    t.query(sql, values).await[0]
        .try_get_by_index::<i64>(0)
        .unwrap()
}

/// `(table, column)` -> the length limit of a `varchar(n)` column.
type StringLengths = BTreeMap<(String, String), u32>;

/// The length limits the entities declare (`column_type = "String(StringLen::N(n))"`).
fn declared_string_lengths() -> StringLengths {
    entity::registry::all()
        .into_iter()
        .flat_map(|entity| {
            entity
                .columns
                .into_iter()
                .filter_map(move |column| match column.column_type {
                    ColumnType::String(StringLen::N(n)) => {
                        Some(((entity.table.to_owned(), column.name.to_owned()), n))
                    }
                    _ => None,
                })
        })
        .collect()
}

/// The length limits of the `varchar(n)` columns of `tables`, as the database reports them:
/// PostgreSQL's `character_maximum_length`, SQLite's declared type.
async fn database_string_lengths(t: &TestDb, tables: &BTreeSet<String>) -> StringLengths {
    let mut lengths = StringLengths::new();
    if t.is_postgres() {
        let rows = t
            .query(
                "SELECT table_name::text, column_name::text, character_maximum_length::int4 \
                 FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND data_type = 'character varying' \
                   AND character_maximum_length IS NOT NULL",
                vec![],
            )
            .await;
        for row in rows {
            let table: String = row.try_get_by_index(0).unwrap();
            let column: String = row.try_get_by_index(1).unwrap();
            let length: i32 = row.try_get_by_index(2).unwrap();
            if tables.contains(&table) {
                lengths.insert((table, column), u32::try_from(length).unwrap());
            }
        }
    } else {
        for table in tables {
            for column in introspect::columns(&t.db, table).await.unwrap() {
                let declared = column.data_type.to_ascii_lowercase();
                let length = declared
                    .strip_prefix("varchar(")
                    .and_then(|rest| rest.strip_suffix(')'))
                    .map(|n| n.trim().parse::<u32>().unwrap());
                if let Some(length) = length {
                    lengths.insert((table.clone(), column.name), length);
                }
            }
        }
    }
    lengths
}

on_both_backends! {
    async fn migrate_up_down_up_round_trips_and_check_passes(t) {
        Migrator::up(&t.db, None).await.unwrap();
        let report = check::run(&t.db).await.unwrap();
        assert!(report.passed(), "check after up:\n{report}");

        Migrator::down(&t.db, None).await.unwrap();
        let left = introspect::tables(&t.db).await.unwrap();
        assert_eq!(left.into_iter().collect::<Vec<_>>(), vec!["seaql_migrations".to_owned()]);
        assert!(introspect::triggers(&t.db).await.unwrap().is_empty());

        Migrator::up(&t.db, None).await.unwrap();
        let report = check::run(&t.db).await.unwrap();
        assert!(report.passed(), "check after up, down, up:\n{report}");
        // The catalog's tables, seaql_migrations, the stored answers of idempotent
        // requests, the receipts of webhooks, the watermarks of `events` readers, and on
        // PostgreSQL the change feed's retention (`change_events`): infrastructure rather
        // than tenant data.
        let extra = if t.is_postgres() { 5 } else { 4 };
        assert_eq!(introspect::tables(&t.db).await.unwrap().len(), TABLES.len() + extra);
    }

    async fn entity_string_lengths_match_the_database(t) {
        let t = t.migrated().await;
        let tables: BTreeSet<String> =
            entity::registry::all().iter().map(|e| e.table.to_owned()).collect();

        let declared = declared_string_lengths();
        let actual = database_string_lengths(&t, &tables).await;

        let show = |n: Option<&u32>| n.map_or("no limit".to_owned(), |n| format!("varchar({n})"));
        let mismatches: Vec<String> = declared
            .keys()
            .chain(actual.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|key| declared.get(*key) != actual.get(*key))
            .map(|key| {
                let (table, column) = key;
                let (entity, database) = (show(declared.get(key)), show(actual.get(key)));
                format!("{table}.{column}: entity {entity}, database {database}")
            })
            .collect();
        assert!(mismatches.is_empty(), "string lengths differ:\n{}", mismatches.join("\n"));
        // Not vacuously equal: the schema does limit lengths, e.g. the sign-in address.
        assert_eq!(actual.get(&("users".to_owned(), "email".to_owned())), Some(&255));
    }

    async fn check_names_a_dropped_index_and_a_dropped_trigger(t) {
        let t = t.migrated().await;
        let index = CRITICAL_INDEXES[0];
        t.execute(&format!("DROP INDEX {index}"), vec![]).await.unwrap();
        let trigger = if t.is_postgres() {
            "DROP TRIGGER projects_updated_at ON projects"
        } else {
            "DROP TRIGGER projects_updated_at"
        };
        t.execute(trigger, vec![]).await.unwrap();

        let report = check::run(&t.db).await.unwrap();

        assert!(!report.passed());
        let text = report.to_string();
        assert!(text.contains(&format!("❌ Missing indexes: {index}")), "{text}");
        assert!(text.contains("❌ Missing triggers: projects_updated_at on projects"), "{text}");
    }

    async fn a_new_user_gets_profile_credits_and_preferences_exactly_once(t) {
        let t = t.migrated().await;

        let user = insert_user(&t, "ada@example.com").await;
        let other = insert_user(&t, "grace@example.com").await;

        for table in ["profiles", "credit_accounts", "notification_preferences", "credit_transactions"] {
            let sql = format!("SELECT count(*) FROM {table} WHERE user_id = $1");
            assert_eq!(count(&t, &sql, vec![user.into()]).await, 1, "{table}");
            assert_eq!(count(&t, &sql, vec![other.into()]).await, 1, "{table}");
        }
        let rows = t
            .query(
                "SELECT a.balance, x.amount, x.balance_after, x.kind FROM credit_accounts a \
                 JOIN credit_transactions x ON x.user_id = a.user_id WHERE a.user_id = $1",
                vec![user.into()],
            )
            .await;
        let row = &rows[0];
        assert_eq!(row.try_get_by_index::<i32>(0).unwrap(), 100);
        assert_eq!(row.try_get_by_index::<i32>(1).unwrap(), 100);
        assert_eq!(row.try_get_by_index::<i32>(2).unwrap(), 100);
        assert_eq!(row.try_get_by_index::<String>(3).unwrap(), "signup_bonus");
    }

    async fn updated_at_changes_on_update(t) {
        let t = t.migrated().await;
        let user = insert_user(&t, "ada@example.com").await;
        let project = Uuid::new_v4();
        t.execute(
            "INSERT INTO projects (id, name, user_id, created_at, updated_at) \
             VALUES ($1, 'p', $2, $3, $3)",
            vec![project.into(), user.into(), chrono::DateTime::UNIX_EPOCH.into()],
        )
        .await
        .unwrap();

        t.execute("UPDATE projects SET name = 'renamed' WHERE id = $1", vec![project.into()])
            .await
            .unwrap();

        let rows = t
            .query("SELECT created_at, updated_at FROM projects WHERE id = $1", vec![project.into()])
            .await;
        let created: chrono::DateTime<chrono::Utc> = rows[0].try_get_by_index(0).unwrap();
        let updated: chrono::DateTime<chrono::Utc> = rows[0].try_get_by_index(1).unwrap();
        assert_eq!(created, chrono::DateTime::UNIX_EPOCH);
        assert!(updated > chrono::Utc::now() - chrono::Duration::minutes(5), "{updated}");
    }

    async fn foreign_keys_refuse_orphans(t) {
        let t = t.migrated().await;

        let orphan = t
            .execute(
                "INSERT INTO projects (id, name, user_id) VALUES ($1, 'p', $2)",
                vec![Uuid::new_v4().into(), Uuid::new_v4().into()],
            )
            .await;

        assert!(orphan.is_err());
        assert_eq!(count(&t, "SELECT count(*) FROM projects", vec![]).await, 0);
    }

    async fn a_child_cannot_belong_to_another_tenants_parent(t) {
        let t = t.migrated().await;
        let alice = insert_user(&t, "alice@example.com").await;
        let bob = insert_user(&t, "bob@example.com").await;
        let project = Uuid::new_v4();
        t.execute(
            "INSERT INTO projects (id, name, user_id) VALUES ($1, 'p', $2)",
            vec![project.into(), alice.into()],
        )
        .await
        .unwrap();

        let stolen = t
            .execute(
                "INSERT INTO crawl_jobs (id, project_id, user_id) VALUES ($1, $2, $3)",
                vec![Uuid::new_v4().into(), project.into(), bob.into()],
            )
            .await;

        assert!(stolen.is_err());
    }

    async fn unique_constraints_refuse_duplicates(t) {
        let t = t.migrated().await;
        insert_user(&t, "ada@example.com").await;

        let again = t
            .execute(
                "INSERT INTO users (id, email) VALUES ($1, $2)",
                vec![Uuid::new_v4().into(), "ada@example.com".into()],
            )
            .await;

        assert!(again.is_err());
        assert_eq!(count(&t, "SELECT count(*) FROM users", vec![]).await, 1);
    }

    async fn a_credit_balance_cannot_go_negative(t) {
        let t = t.migrated().await;
        let user = insert_user(&t, "ada@example.com").await;

        let overdraw = t
            .execute("UPDATE credit_accounts SET balance = -1 WHERE user_id = $1", vec![user.into()])
            .await;

        assert!(overdraw.is_err());
        let balance = t
            .query("SELECT balance FROM credit_accounts WHERE user_id = $1", vec![user.into()])
            .await[0]
            .try_get_by_index::<i32>(0)
            .unwrap();
        assert_eq!(balance, 100);
    }

    async fn a_second_result_row_for_the_same_null_segment_is_refused(t) {
        let t = t.migrated().await;
        let shop = Uuid::new_v4();
        t.execute(
            "INSERT INTO shops (id, domain, access_token_enc) VALUES ($1, 'a.myshopify.com', $2)",
            vec![shop.into(), vec![0u8].into()],
        )
        .await
        .unwrap();
        let experiment = Uuid::new_v4();
        t.execute(
            "INSERT INTO experiments (id, name, target, allocation, variants, shop_id) \
             VALUES ($1, 'e', 'product_page:cta', $2, $2, $3)",
            vec![experiment.into(), serde_json::json!({}).into(), shop.into()],
        )
        .await
        .unwrap();
        let insert = "INSERT INTO results_aggregates (id, experiment_id, variant, segment, shop_id) \
                      VALUES ($1, $2, 'control', $3, $4)";
        let null_segment = Value::String(None);
        t.execute(insert, vec![Uuid::new_v4().into(), experiment.into(), null_segment.clone(), shop.into()])
            .await
            .unwrap();
        t.execute(insert, vec![Uuid::new_v4().into(), experiment.into(), "mobile".into(), shop.into()])
            .await
            .unwrap();

        let duplicate = t
            .execute(insert, vec![Uuid::new_v4().into(), experiment.into(), null_segment, shop.into()])
            .await;

        assert!(duplicate.is_err());
        assert_eq!(count(&t, "SELECT count(*) FROM results_aggregates", vec![]).await, 2);
    }
}

#[tokio::test]
async fn an_event_lands_in_its_months_partition() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let shop = Uuid::new_v4();
    t.execute(
        "INSERT INTO shops (id, domain, access_token_enc) VALUES ($1, 'a.myshopify.com', $2)",
        vec![shop.into(), vec![0u8].into()],
    )
    .await
    .unwrap();
    let now = chrono::Utc::now();

    t.execute(
        "INSERT INTO events (id, shop_id, anon_id, session_id, event_type, ts) \
         VALUES ($1, $2, 'anon', 'session', 'page_view', $3)",
        vec![Uuid::new_v4().into(), shop.into(), now.into()],
    )
    .await
    .unwrap();

    let rows = t
        .query("SELECT tableoid::regclass::text FROM events", vec![])
        .await;
    let partition: String = rows[0].try_get_by_index(0).unwrap();
    assert_eq!(partition, now.format("events_%Y_%m").to_string());
}
