//! Realtime: GraphQL subscriptions over a real WebSocket on a real port, on both backends.
//!
//! On PostgreSQL every change below is made by plain SQL and reaches subscribers through the
//! triggers and `LISTEN`; on SQLite the service publishes its own writes, so the tests
//! publish what a mutation would (`Broker::publish`) after writing.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use api::realtime::{FeedError, Filter, Op, Session, Write};
use api::store::Scope;
use futures_util::StreamExt;
use migration::catalog::{TABLES, Tenant};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::app::{SECRET, TestApp};
use crate::common::fixtures::{self, row};
use crate::common::server::{Client, Incoming, Server, keys};
use crate::common::world::{self, Side, World};
use crate::common::{TestDb, on_both_backends};

fn gid(type_name: &str, id: Uuid) -> String {
    format!("gid://stratix/{type_name}/{id}")
}

fn user_token(user: Uuid) -> String {
    TestApp::token("authenticated", &user.to_string())
}

/// A user with a clone and a task; returns (user, clone, task).
async fn user_with_task(db: &DatabaseConnection, email: &str) -> (Uuid, Uuid, Uuid) {
    let user = fixtures::user(db, email).await;
    let clone = row(
        db,
        "ai_clones",
        vec![
            ("name", "clone".into()),
            ("model_type", "gpt".into()),
            ("user_id", user.into()),
        ],
    )
    .await;
    let task = row(
        db,
        "ai_tasks",
        vec![
            ("clone_id", clone.into()),
            ("task_name", "task".into()),
            ("user_id", user.into()),
        ],
    )
    .await;
    (user, clone, task)
}

/// Sets a task's status, as a mutation would (publishing on SQLite).
async fn set_status(t: &TestDb, server: &Server, task: (Uuid, Uuid, Uuid), status: &str) {
    let (user, clone, task) = task;
    t.execute(
        "UPDATE ai_tasks SET status = $1 WHERE id = $2",
        vec![status.into(), task.into()],
    )
    .await
    .unwrap();
    server.publish(t, [Write::update("ai_tasks", task, Some(user)).key(clone)]);
}

const TASK_BY_ID: &str = "subscription($taskId: ID) {
  aiTaskUpdated(taskId: $taskId) { cursor op id rowId node { id status clone { name } } } }";
const TASK_BY_CLONE: &str = "subscription($cloneId: ID) {
  aiTaskUpdated(cloneId: $cloneId) { cursor op node { status } } }";
const ROW_CHANGED: &str = "subscription($tables: [ChangeTable!], $after: String) {
  rowChanged(tables: $tables, after: $after) { cursor op table rowId node { id } } }";

on_both_backends! {
    async fn a_task_change_reaches_its_subscriber_within_a_second_with_the_new_status(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let task = user_with_task(&t.db, "ada@example.com").await;
        let token = user_token(task.0);
        let mut modern = Client::connect(server.addr, false).await;
        modern.init(&token).await;
        modern.subscribe("task", TASK_BY_ID, json!({ "taskId": gid("AiTask", task.2) })).await;
        let mut legacy = Client::connect(server.addr, true).await;
        legacy.init(&token).await;
        legacy.subscribe("clone", TASK_BY_CLONE, json!({ "cloneId": task.1.to_string() })).await;
        server.subscribed(2).await;

        let started = Instant::now();
        set_status(&t, &server, task, "completed").await;
        let event = modern.event("task", Duration::from_secs(1)).await;
        let elapsed = started.elapsed();
        let by_clone = legacy.event("clone", Duration::from_secs(1)).await;

        assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
        let change = &event["data"]["aiTaskUpdated"];
        assert_eq!(change["op"], "UPDATE", "{event}");
        assert_eq!(change["id"], gid("AiTask", task.2));
        assert_eq!(change["rowId"], task.2.to_string());
        assert_eq!(change["node"]["status"], "completed");
        assert_eq!(change["node"]["clone"]["name"], "clone");
        assert!(change["cursor"].as_str().unwrap().parse::<i64>().is_ok());
        assert_eq!(by_clone["data"]["aiTaskUpdated"]["node"]["status"], "completed", "{by_clone}");
    }

    async fn another_tenant_never_receives_a_change_on_any_feed(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let mut service = Client::connect(server.addr, false).await;
        service.init(&TestApp::service()).await;
        service.subscribe("all", ROW_CHANGED, json!({})).await;
        server.subscribed(1).await;
        // Inserts: the world, with both tenants' rows in every table.
        let world = world::build(&t.db).await;
        let b = world.tenants(Side::B).clone();
        let mut b_user = Client::connect(server.addr, false).await;
        b_user.init(&user_token(b.user)).await;
        b_user.subscribe("all", ROW_CHANGED, json!({})).await;
        let rows = |table: &str, side: Side| world.rows(table).of(side)[0];
        let typed = [
            ("task", "subscription($id: ID) { aiTaskUpdated(taskId: $id) { rowId } }", json!({ "id": rows("ai_tasks", Side::A) })),
            ("clone", "subscription($id: ID) { aiTaskUpdated(cloneId: $id) { rowId } }", json!({ "id": rows("ai_clones", Side::A) })),
            ("job", "subscription($id: ID) { crawlJobUpdated(projectId: $id) { rowId } }", json!({ "id": rows("projects", Side::A) })),
            ("notes", "subscription { notificationAdded { rowId node { userId } } }", json!({})),
            ("messages", "subscription($id: ID!) { messageReceived(conversationId: $id) { rowId } }", json!({ "id": rows("conversations", Side::A) })),
            ("results", "subscription($id: ID!) { experimentResultsUpdated(experimentId: $id) { rowId } }", json!({ "id": rows("experiments", Side::A) })),
        ];
        for (id, query, variables) in &typed {
            b_user.subscribe(id, query, variables.clone()).await;
        }
        let mut b_shop = Client::connect(server.addr, false).await;
        b_shop.init(&world::shop_session_token(&b.shop_domain)).await;
        b_shop.subscribe("all", ROW_CHANGED, json!({})).await;
        b_shop.subscribe("results", typed[5].1, typed[5].2.clone()).await;
        server.subscribed(1 + 1 + typed.len() + 2).await;
        if !t.is_postgres() {
            for spec in TABLES {
                let rows = world.rows(spec.name);
                let all: Vec<Uuid> = rows.a.iter().chain(&rows.b).chain(&rows.unowned).copied().collect();
                server.publish(&t, writes(&t, spec.name, &all, Op::Insert).await);
            }
        }

        // Updates of every row of every table, then deletes of tenant A (cascading).
        let mut updatable = HashSet::new();
        for spec in TABLES {
            let rows = world.rows(spec.name);
            let all: Vec<Uuid> = rows.a.iter().chain(&rows.b).chain(&rows.unowned).copied().collect();
            let published = writes(&t, spec.name, &all, Op::Update).await;
            let owner = spec.owner_column;
            // Append-only tables (the credit ledger) refuse updates.
            if t.execute(&format!("UPDATE {} SET {owner} = {owner}", spec.name), vec![]).await.is_ok() {
                updatable.insert(spec.name);
                server.publish(&t, published);
            }
        }
        assert!(updatable.len() + 1 >= TABLES.len(), "{updatable:?}");
        // Children first, so no delete waits on a cascade.
        for spec in TABLES.iter().rev() {
            let ids = world.rows(spec.name).of(Side::A).to_vec();
            let deleted = writes(&t, spec.name, &ids, Op::Delete).await;
            for id in ids {
                t.execute(&format!("DELETE FROM {} WHERE id = $1", spec.name), vec![id.into()]).await.unwrap();
            }
            server.publish(&t, deleted);
        }
        // Sentinels: B's own changes, delivered after everything above.
        let project = row(&t.db, "projects", vec![("name", "sentinel".into()), ("user_id", b.user.into())]).await;
        let product = fixtures::product(&t.db, b.shop, "sentinel").await;
        server.publish(&t, [Write::insert("projects", project, Some(b.user)), Write::insert("products", product, Some(b.shop))]);
        let wait = Duration::from_secs(20);
        let is = |id: Uuid| move |p: &Value| p["data"]["rowChanged"]["rowId"] == id.to_string();
        b_user.until("all", wait, is(project)).await;
        b_shop.until("all", wait, is(product)).await;
        service.until("all", wait, is(product)).await;
        b_user.drain(Duration::from_millis(200)).await;
        b_shop.drain(Duration::from_millis(200)).await;

        let seen = |client: &Client, id: &str| -> Vec<(String, String, String)> {
            client.events.get(id).into_iter().flatten().map(|p| {
                let change = &p["data"]["rowChanged"];
                (change["table"].as_str().unwrap().to_owned(), change["op"].as_str().unwrap().to_owned(), change["rowId"].as_str().unwrap().to_owned())
            }).collect()
        };
        let visible = |kinds: &[Tenant]| -> HashSet<String> {
            TABLES.iter().filter(|s| kinds.contains(&s.tenant)).flat_map(|s| {
                let rows = world.rows(s.name);
                let shared = if s.shared_when_null { rows.unowned.clone() } else { Vec::new() };
                rows.b.into_iter().chain(shared)
            }).map(|id| id.to_string()).collect()
        };
        for (client, kinds) in [(&b_user, &[Tenant::User, Tenant::Distributor][..]), (&b_shop, &[Tenant::Shop][..])] {
            let mut may = visible(kinds);
            may.extend([project.to_string(), product.to_string()]);
            let events = seen(client, "all");
            let leaked: Vec<_> = events.iter().filter(|(_, _, id)| !may.contains(id)).collect();
            assert!(leaked.is_empty(), "tenant B received changes it may not read: {leaked:?}");
            // B's own rows did change in every table of its kinds, and B heard of it.
            for spec in TABLES.iter().filter(|s| s.fed && kinds.contains(&s.tenant) && updatable.contains(s.name)) {
                let table = spec.name.to_ascii_uppercase();
                assert!(events.iter().any(|(t, op, _)| *t == table && op == "UPDATE"), "B missed its own update on {table}");
            }
        }
        for (id, _, _) in &typed {
            let events = b_user.events.get(*id).cloned().unwrap_or_default();
            let own_notification = |p: &Value| p["data"]["notificationAdded"]["node"]["userId"] == b.user.to_string();
            assert!(events.iter().all(own_notification), "B received A's changes on {id}: {events:?}");
        }
        assert!(b_shop.events.get("results").is_none_or(Vec::is_empty));
        // The feed covers every fed table: the service saw updates everywhere and A's
        // deletes, and nothing of `events`.
        let everything = seen(&service, "all");
        assert!(!everything.iter().any(|(t, _, _)| t == "EVENTS"), "events is not fed");
        for spec in TABLES.iter().filter(|s| s.fed) {
            let table = spec.name.to_ascii_uppercase();
            for op in ["INSERT", "UPDATE", "DELETE"] {
                if op == "UPDATE" && !updatable.contains(spec.name) {
                    continue;
                }
                assert!(everything.iter().any(|(t, o, _)| *t == table && o == op), "no {op} event for {table}");
            }
        }
    }

    async fn resume_after_a_disconnect_delivers_exactly_the_missed_events(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let task = user_with_task(&t.db, "ada@example.com").await;
        let other = user_with_task(&t.db, "grace@example.com").await;
        let token = user_token(task.0);
        let tables = json!({ "tables": ["AI_TASKS"] });
        let mut client = Client::connect(server.addr, false).await;
        client.init(&token).await;
        client.subscribe("tasks", ROW_CHANGED, tables.clone()).await;
        server.subscribed(1).await;
        set_status(&t, &server, task, "in_progress").await;
        let first = client.event("tasks", Duration::from_secs(5)).await;
        let cursor = first["data"]["rowChanged"]["cursor"].as_str().unwrap().to_owned();
        drop(client);

        for status in ["completed", "failed", "pending"] {
            set_status(&t, &server, task, status).await;
            set_status(&t, &server, other, status).await;
        }
        let mut client = Client::connect(server.addr, true).await;
        client.init(&token).await;
        client.subscribe("tasks", ROW_CHANGED, json!({ "tables": ["AI_TASKS"], "after": cursor })).await;
        let mut replayed = Vec::new();
        for _ in 0..3 {
            replayed.push(client.event("tasks", Duration::from_secs(5)).await);
        }
        server.subscribed(1).await;
        set_status(&t, &server, task, "in_progress").await;
        let live = client.event("tasks", Duration::from_secs(5)).await;
        client.drain(Duration::from_millis(300)).await;

        let cursors: Vec<i64> = replayed.iter().chain([&live]).map(|p| p["data"]["rowChanged"]["cursor"].as_str().unwrap().parse().unwrap()).collect();
        assert!(cursors.windows(2).all(|w| w[0] < w[1]), "{cursors:?}");
        assert!(cursors[0] > cursor.parse::<i64>().unwrap());
        for payload in replayed.iter().chain([&live]) {
            let change = &payload["data"]["rowChanged"];
            assert_eq!(change["rowId"], task.2.to_string(), "another user's change: {payload}");
            assert_eq!(change["op"], "UPDATE");
        }
        assert_eq!(client.events["tasks"].len(), 4, "{:?}", client.events["tasks"]);
    }

    async fn a_cursor_older_than_the_retention_is_refused_with_a_clear_error(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let task = user_with_task(&t.db, "ada@example.com").await;
        let mut client = Client::connect(server.addr, false).await;
        client.init(&user_token(task.0)).await;
        client.subscribe("tasks", ROW_CHANGED, json!({ "tables": ["AI_TASKS"] })).await;
        server.subscribed(1).await;
        for status in ["in_progress", "completed", "failed"] {
            set_status(&t, &server, task, status).await;
        }
        let mut cursors = Vec::new();
        for _ in 0..3 {
            let event = client.event("tasks", Duration::from_secs(5)).await;
            cursors.push(event["data"]["rowChanged"]["cursor"].as_str().unwrap().parse::<i64>().unwrap());
        }
        let expired = if t.is_postgres() {
            // As the pruning does: everything before the newest kept row is gone.
            t.execute("DELETE FROM change_events WHERE cursor < $1", vec![cursors[2].into()]).await.unwrap();
            cursors[0]
        } else {
            1
        };

        client.subscribe("old", ROW_CHANGED, json!({ "after": expired.to_string() })).await;
        client.subscribe("future", ROW_CHANGED, json!({ "after": (i64::MAX / 2).to_string() })).await;
        let old = client.event("old", Duration::from_secs(5)).await;
        // The two answers may come in either order: the second may have arrived already.
        let future = match client.events.get("future").and_then(|events| events.first()) {
            Some(event) => event.clone(),
            None => client.event("future", Duration::from_secs(5)).await,
        };

        let error = &old["errors"][0];
        assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{old}");
        assert_eq!(error["extensions"]["reason"], "CURSOR_EXPIRED");
        assert!(error["message"].as_str().unwrap().contains("refetch"), "{old}");
        assert_eq!(future["errors"][0]["extensions"]["reason"], "UNKNOWN_CURSOR", "{future}");
    }

    async fn token_expiry_tells_each_subscription_where_to_resume_and_closes_with_4403(t) {
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let user = fixtures::user(&t.db, "ada@example.com").await;
        let now = chrono::Utc::now();
        let claims = |secret: &[u8], exp: i64| {
            api::auth::jwt::mint(secret, &api::auth::jwt::Claims {
                sub: user.to_string(),
                role: "authenticated".to_owned(),
                aud: api::auth::jwt::AUDIENCE.to_owned(),
                exp,
                iat: Some(now.timestamp()),
                nbf: None,
            }).unwrap()
        };
        let short = claims(SECRET, now.timestamp() + 2);
        let forged = claims(b"not-the-secret", now.timestamp() + 3600);

        let mut expiring = Client::connect(server.addr, false).await;
        expiring.init(&short).await;
        expiring.subscribe("tasks", ROW_CHANGED, json!({})).await;
        let mut refused = Client::connect(server.addr, false).await;
        let answer = refused.init_with(json!({ "Authorization": format!("Bearer {forged}") })).await;
        let mut refused_legacy = Client::connect(server.addr, true).await;
        let legacy_answer = refused_legacy.init_with(json!({ "token": forged })).await;
        let mut anonymous = Client::connect(server.addr, false).await;
        anonymous.init_with(json!({})).await;
        anonymous.subscribe("tasks", ROW_CHANGED, json!({})).await;
        let last = expiring
            .until("tasks", Duration::from_secs(5), |e| e["extensions"]["resumeAfter"].is_string())
            .await;
        let (code, reason) = expiring.closed(Duration::from_secs(5)).await;

        assert!(matches!(answer, Incoming::Closed(4403, _)), "{answer:?}");
        assert!(matches!(&legacy_answer, Incoming::Json(m) if m["type"] == "connection_error"), "{legacy_answer:?}");
        assert!(matches!(refused_legacy.recv(Duration::from_secs(5)).await, Some(Incoming::Closed(4403, _))));
        assert_eq!((code, reason.as_str()), (4403, "Forbidden: token expired"));
        assert_eq!(last["data"], Value::Null, "{last}");
        assert_eq!(last["extensions"]["reason"], "TOKEN_EXPIRED", "{last}");
        assert!(last["extensions"]["resumeAfter"].as_str().unwrap().parse::<i64>().is_ok(), "{last}");
        let denied = anonymous.event("tasks", Duration::from_secs(5)).await;
        assert_eq!(denied["errors"][0]["extensions"]["code"], "UNAUTHENTICATED", "{denied}");
    }

    async fn a_slow_subscriber_is_dropped_without_holding_up_the_others(t) {
        let t = t.migrated().await;
        let state = api::build_state(t.db.clone(), keys()).unwrap();
        let broker = state.realtime.clone();
        let user = fixtures::user(&t.db, "ada@example.com").await;
        let scope = Scope::User { id: user, distributors: Vec::new(), roles: Vec::new() };
        let principal = api::auth::Principal::User { id: user, scopes: Vec::new(), key: None };
        let session = std::sync::Arc::new(Session::new(principal, scope));
        let notifications = api::tables::tables().get("notifications").unwrap().index;
        let filter = Filter::new([notifications], Op::ALL);
        let slow = broker.subscribe(session.clone(), filter.clone(), None).await.map_err(|e| format!("{e:?}")).unwrap();
        let fast = broker.subscribe(session, filter, None).await.map_err(|e| format!("{e:?}")).unwrap();
        let total = 2 * api::realtime::SUBSCRIBER_BUFFER;
        let reader = tokio::spawn(async move {
            fast.take(total).filter_map(|r| async move { r.ok() }).count().await
        });

        let started = Instant::now();
        for chunk in 0..total / 128 {
            if t.is_postgres() {
                t.execute(
                    "INSERT INTO notifications (id, user_id, type, title, body) \
                     SELECT gen_random_uuid(), $1, 'system', 'n' || g, 'body' FROM generate_series(1, 128) g",
                    vec![user.into()],
                ).await.unwrap();
            } else {
                let writes = (0..128).map(|i| Write::delete("notifications", Uuid::from_u128((chunk * 128 + i) as u128), Some(user)));
                broker.publish(writes);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let writing = started.elapsed();
        let received = tokio::time::timeout(Duration::from_secs(30), reader).await.unwrap().unwrap();
        futures_util::pin_mut!(slow);
        let mut before_error = 0;
        let ended = loop {
            match slow.next().await {
                Some(Ok(_)) => before_error += 1,
                Some(Err(error)) => break error,
                None => panic!("the slow feed ended without an error"),
            }
        };

        assert_eq!(received, total, "the fast subscriber missed events");
        assert!(matches!(ended, FeedError::SlowConsumer), "{ended:?}");
        assert_eq!(before_error, 0, "a dropped subscriber gets its error first");
        assert!(writing < Duration::from_secs(20), "{writing:?}");
    }

    async fn scope_allows_agrees_with_the_sql_condition_on_every_table(t) {
        let t = t.migrated().await;
        let world = world::build(&t.db).await;
        let scopes = scopes_of(&t, &world).await;

        let mut checked = 0;
        for table in &api::tables::tables().all {
            let spec = table.spec.unwrap();
            let rows = world.rows(table.name);
            let ids: Vec<Uuid> = rows.a.iter().chain(&rows.b).chain(&rows.unowned).copied().collect();
            let owners = owners_of(&t, table.name, spec.owner_column, &ids).await;
            for scope in &scopes {
                let columns = api::store::Columns::default().with(table.id_column());
                let found = api::store::find_by_ids(&t.db, scope, table, columns, &ids).await.unwrap();
                for id in &ids {
                    assert_eq!(
                        scope.allows(table, owners[id]),
                        found.contains_key(id),
                        "{} row {id} (owner {:?}) for {scope:?}", table.name, owners[id]
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > TABLES.len() * scopes.len());
    }
}

/// Every kind of scope over the world: both users (members of their distributors), both
/// shops, service and nobody.
async fn scopes_of(t: &TestDb, world: &World) -> Vec<Scope> {
    let mut scopes = vec![Scope::Service, Scope::Nobody];
    for side in [Side::A, Side::B] {
        let tenants = world.tenants(side);
        let principal = api::auth::Principal::User {
            id: tenants.user,
            scopes: Vec::new(),
            key: None,
        };
        scopes.push(api::auth::scope_of(&t.db, &principal).await.unwrap());
        scopes.push(Scope::Shop { id: tenants.shop });
    }
    scopes
}

/// The owner column's value of each row.
async fn owners_of(
    t: &TestDb,
    table: &str,
    owner: &str,
    ids: &[Uuid],
) -> HashMap<Uuid, Option<Uuid>> {
    let mut owners = HashMap::new();
    for id in ids {
        let rows = t
            .query(
                &format!("SELECT {owner} FROM {table} WHERE id = $1"),
                vec![(*id).into()],
            )
            .await;
        owners.insert(*id, rows[0].try_get_by_index::<Option<Uuid>>(0).unwrap());
    }
    owners
}

/// The writes a mutation would publish for these rows of `table` (owner and feed key read
/// from the rows as they are now).
async fn writes(t: &TestDb, table: &str, ids: &[Uuid], op: Op) -> Vec<Write> {
    let spec = TABLES.iter().find(|s| s.name == table).unwrap();
    let key = migration::feed_key(table);
    let mut writes = Vec::new();
    for id in ids {
        let columns = format!("{}, {}", spec.owner_column, key.unwrap_or("NULL"));
        let rows = t
            .query(
                &format!("SELECT {columns} FROM {table} WHERE id = $1"),
                vec![(*id).into()],
            )
            .await;
        let Some(row) = rows.first() else { continue };
        let owner: Option<Uuid> = row.try_get_by_index(0).unwrap();
        let mut write = Write::new(spec.name, op, *id, owner);
        if key.is_some()
            && let Some(value) = row.try_get_by_index::<Option<Uuid>>(1).unwrap()
        {
            write = write.key(value);
        }
        writes.push(write);
    }
    writes
}

#[tokio::test]
async fn two_instances_share_changes_made_through_either_and_by_plain_sql() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let name: String = t.query("SELECT current_database()::text", vec![]).await[0]
        .try_get_by_index(0)
        .unwrap();
    let url = crate::common::postgres::server().unwrap().url_for(&name);
    let one = Server::start(api::db::connect(&url).await.unwrap()).await;
    let two = Server::start(api::db::connect(&url).await.unwrap()).await;
    let task = user_with_task(&t.db, "ada@example.com").await;
    let token = user_token(task.0);
    let mut client = Client::connect(two.addr, false).await;
    client.init(&token).await;
    client
        .subscribe(
            "changes",
            ROW_CHANGED,
            json!({ "tables": ["API_KEYS", "AI_TASKS"] }),
        )
        .await;
    two.subscribed(1).await;

    let created = one
        .post(
            &token,
            "mutation { apiKeyCreate(input: { name: \"ci\" }) { apiKey { rowId } userErrors { message } } }",
        )
        .await;
    let key = created["data"]["apiKeyCreate"]["apiKey"]["rowId"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    t.execute(
        "UPDATE ai_tasks SET status = 'completed' WHERE id = $1",
        vec![task.2.into()],
    )
    .await
    .unwrap();
    let through_one = client
        .until("changes", Duration::from_secs(5), |p| {
            p["data"]["rowChanged"]["rowId"] == key
        })
        .await;
    let by_sql = client
        .until("changes", Duration::from_secs(5), |p| {
            p["data"]["rowChanged"]["rowId"] == task.2.to_string()
        })
        .await;

    assert_eq!(through_one["data"]["rowChanged"]["op"], "INSERT");
    assert_eq!(through_one["data"]["rowChanged"]["table"], "API_KEYS");
    assert_eq!(by_sql["data"]["rowChanged"]["op"], "UPDATE");
    assert_eq!(one.broker.subscriptions(), 0);
}

#[tokio::test]
async fn the_socket_closes_without_connection_init_and_on_a_duplicate_subscription_id() {
    let t = TestDb::sqlite().await.migrated().await;
    let server = Server::start(t.db.clone()).await;
    let user = fixtures::user(&t.db, "ada@example.com").await;
    let mut silent = Client::connect(server.addr, false).await;
    let mut duplicate = Client::connect(server.addr, false).await;
    duplicate.init(&user_token(user)).await;

    duplicate.subscribe("same", ROW_CHANGED, json!({})).await;
    duplicate.subscribe("same", ROW_CHANGED, json!({})).await;
    let started = Instant::now();
    let (silent_code, silent_reason) = silent.closed(Duration::from_secs(15)).await;

    assert_eq!(duplicate.closed(Duration::from_secs(5)).await.0, 4409);
    assert_eq!(silent_code, 4408, "{silent_reason}");
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// `tests/realtime-client/`, its packages installed from the lockfile on first use (the
/// `graphql-ws` npm client; Node 20+).
async fn realtime_client() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realtime-client");
    if !dir.join("node_modules/graphql-ws").exists() {
        let status = tokio::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir)
            .status()
            .await
            .unwrap_or_else(|e| panic!("npm is needed for this test (Node 20+): {e:?}"));
        assert!(status.success(), "npm ci failed in {}", dir.display());
    }
    dir
}

/// The `graphql-ws` npm client (the reference `graphql-transport-ws` implementation)
/// subscribes unchanged: `tests/realtime-client/` (Node 20+; its packages are installed
/// from the lockfile on first run).
#[tokio::test]
async fn the_graphql_ws_npm_client_receives_task_updates() {
    let t = TestDb::sqlite().await.migrated().await;
    let server = Server::start(t.db.clone()).await;
    let task = user_with_task(&t.db, "ada@example.com").await;
    let dir = realtime_client().await;
    let mut node = tokio::process::Command::new("node")
        .arg("subscribe.mjs")
        .arg(format!("ws://{}/graphql", server.addr))
        .arg(user_token(task.0))
        .arg(gid("AiTask", task.2))
        .current_dir(&dir)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("node is needed for this test (Node 20+): {e:?}"));
    server.subscribed(1).await;

    set_status(&t, &server, task, "completed").await;
    let output = tokio::time::timeout(Duration::from_secs(20), async {
        let mut out = String::new();
        tokio::io::AsyncReadExt::read_to_string(node.stdout.as_mut().unwrap(), &mut out)
            .await
            .unwrap();
        (node.wait().await.unwrap(), out)
    })
    .await
    .unwrap_or_else(|e| panic!("the node client did not finish: {e:?}"));

    let (status, out) = output;
    assert!(status.success(), "node client failed: {out}");
    let event: Value = serde_json::from_str(out.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{out}"));
    assert_eq!(
        event["data"]["aiTaskUpdated"]["node"]["status"], "completed",
        "{event}"
    );
}

#[tokio::test]
async fn every_fed_table_and_no_other_has_a_change_feed_trigger_on_postgres() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;

    let triggers = migration::introspect::triggers(&t.db).await.unwrap();

    let fed = |s: &&migration::catalog::TableSpec| {
        triggers.contains(&(s.name.to_owned(), migration::change_trigger(s.name)))
    };
    let missing: Vec<&str> = TABLES
        .iter()
        .filter(|s| s.fed && !fed(s))
        .map(|s| s.name)
        .collect();
    let unfed: Vec<&str> = TABLES
        .iter()
        .filter(|s| !s.fed && fed(s))
        .map(|s| s.name)
        .collect();
    assert!(missing.is_empty(), "no change feed trigger on {missing:?}");
    assert!(unfed.is_empty(), "a change feed trigger on unfed {unfed:?}");
    assert!(
        TABLES.iter().any(|s| !s.fed),
        "events is kept out of the feed"
    );
}

#[tokio::test]
async fn queries_run_over_the_socket_and_mutations_are_refused() {
    let t = TestDb::sqlite().await.migrated().await;
    let server = Server::start(t.db.clone()).await;
    let task = user_with_task(&t.db, "ada@example.com").await;
    let mut client = Client::connect(server.addr, false).await;
    client.init(&user_token(task.0)).await;

    client
        .subscribe(
            "q",
            "{ aiTasks { totalCount nodes { status } } }",
            json!({}),
        )
        .await;
    let query = client.event("q", Duration::from_secs(5)).await;
    client
        .subscribe(
            "m",
            "mutation { apiKeyCreate(input: { name: \"k\" }) { userErrors { message } } }",
            json!({}),
        )
        .await;
    // Refused before it runs: an `error` message, as graphql-transport-ws says.
    let mutation = client.answer("m", Duration::from_secs(5)).await;

    assert_eq!(query["data"]["aiTasks"]["totalCount"], 1, "{query}");
    assert_eq!(query["data"]["aiTasks"]["nodes"][0]["status"], "pending");
    assert_eq!(
        mutation["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{mutation}"
    );
    let keys = t.query("SELECT count(*) FROM api_keys", vec![]).await;
    assert_eq!(keys[0].try_get_by_index::<i64>(0).unwrap(), 0);
}

#[tokio::test]
async fn changes_arrive_in_cursor_order_when_transactions_commit_out_of_order_or_roll_back() {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement, TransactionTrait as _};
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let server = Server::start(t.db.clone()).await;
    let (_, _, first) = user_with_task(&t.db, "ada@example.com").await;
    let (_, _, second) = user_with_task(&t.db, "grace@example.com").await;
    let mut client = Client::connect(server.addr, false).await;
    client.init(&TestApp::service()).await;
    client
        .subscribe("tasks", ROW_CHANGED, json!({ "tables": ["AI_TASKS"] }))
        .await;
    server.subscribed(1).await;
    let update = |id: Uuid| {
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE ai_tasks SET status = 'completed' WHERE id = $1",
            [id.into()],
        )
    };
    let row_of = |p: &Value| {
        p["data"]["rowChanged"]["rowId"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let cursor_of = |p: &Value| {
        p["data"]["rowChanged"]["cursor"]
            .as_str()
            .unwrap()
            .parse::<i64>()
            .unwrap()
    };

    // The feed starts with the server, so the fixtures' changes may still be on their way
    // to this subscriber. Changes arrive in cursor order: once a marker change made now has
    // arrived, they all have, and the scenario starts from an empty record.
    t.db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE ai_tasks SET task_name = 'marker' WHERE id = $1",
        [second.into()],
    ))
    .await
    .unwrap();
    client
        .until("tasks", Duration::from_secs(5), |p| {
            p["data"]["rowChanged"]["op"] == "UPDATE" && row_of(p) == second.to_string()
        })
        .await;
    client.events.clear();

    // The first task's change takes the lower cursor but commits second.
    let slow = t.db.begin().await.unwrap();
    slow.execute_raw(update(first)).await.unwrap();
    t.db.execute_raw(update(second)).await.unwrap();
    client.drain(Duration::from_millis(300)).await;
    let held = client.events.get("tasks").map_or(0, Vec::len);
    slow.commit().await.unwrap();
    let a = client.event("tasks", Duration::from_secs(5)).await;
    let b = client.event("tasks", Duration::from_secs(5)).await;

    assert_eq!(
        held, 0,
        "a change was delivered before a lower cursor committed"
    );
    assert_eq!(
        (row_of(&a), row_of(&b)),
        (first.to_string(), second.to_string())
    );
    assert!(cursor_of(&a) < cursor_of(&b));

    // A rolled-back change leaves a hole in the cursors that must not hold the feed up.
    let doomed = t.db.begin().await.unwrap();
    doomed.execute_raw(update(first)).await.unwrap();
    t.db.execute_raw(update(second)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    doomed.rollback().await.unwrap();
    let after_rollback = client.event("tasks", Duration::from_secs(5)).await;
    client.drain(Duration::from_millis(300)).await;

    assert_eq!(row_of(&after_rollback), second.to_string());
    assert!(
        cursor_of(&after_rollback) > cursor_of(&b) + 1,
        "the rolled-back cursor is skipped"
    );
    assert_eq!(
        client.events["tasks"].len(),
        3,
        "{:?}",
        client.events["tasks"]
    );
}

/// What `tests/realtime-client/resume.mjs` has printed so far, one JSON value a line, and a
/// signal at each line.
struct NodeLines {
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    seen: tokio::sync::watch::Receiver<usize>,
}

impl NodeLines {
    fn read(stdout: tokio::process::ChildStdout) -> Self {
        use tokio::io::AsyncBufReadExt as _;
        let lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = std::sync::Arc::default();
        let (tx, seen) = tokio::sync::watch::channel(0);
        let sink = lines.clone();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push(value);
                tx.send_modify(|n| *n += 1);
            }
        });
        Self { lines, seen }
    }

    fn all(&self) -> Vec<Value> {
        self.lines.lock().unwrap().clone()
    }

    /// How many lines have `key`, and those with `key` equal to `value` when given.
    fn count(&self, key: &str, value: Option<Value>) -> usize {
        self.all()
            .iter()
            .filter(|l| {
                l.get(key)
                    .is_some_and(|v| value.as_ref().is_none_or(|want| v == want))
            })
            .count()
    }

    /// Waits (at most `wait`) until `done` holds for the lines so far.
    async fn until(&mut self, wait: Duration, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + wait;
        while !done(self) {
            let changed = tokio::time::timeout_at(deadline, self.seen.changed()).await;
            assert!(
                matches!(changed, Ok(Ok(()))),
                "node client: not there within {wait:?}; it printed {:#?}",
                self.all()
            );
        }
    }
}

on_both_backends! {
    /// The embedded admin's case: Shopify session tokens live a minute (three seconds
    /// here). The real `graphql-ws` client, with `connectionParams` fetching a fresh token
    /// and `after:` kept current (docs/clients.md), stays subscribed across three expiries
    /// (each a 4403 close after the resume cursor) and sees every change exactly once.
    async fn an_embedded_admins_subscription_survives_three_token_expiries_with_graphql_ws(t) {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let t = t.migrated().await;
        let server = Server::start(t.db.clone()).await;
        let domain = "expiring.myshopify.com";
        fixtures::shop(&t.db, domain).await;
        // App Bridge's idToken(), standing in: each token lives three seconds at most.
        let issued = Arc::new(AtomicUsize::new(0));
        let count = issued.clone();
        let tokens = axum::Router::new().route(
            "/token",
            axum::routing::get(move || {
                count.fetch_add(1, Ordering::Relaxed);
                async move {
                    let now = chrono::Utc::now().timestamp();
                    TestApp::shop_token_with(domain, crate::common::app::SHOPIFY_SECRET, |c| {
                        c["exp"] = json!(now + 3);
                        c["iat"] = json!(now);
                        c["nbf"] = json!(now);
                    })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, tokens).await });
        let dir = realtime_client().await;
        let mut node = tokio::process::Command::new("node")
            .arg("resume.mjs")
            .arg(format!("ws://{}/graphql", server.addr))
            .arg(&token_url)
            .current_dir(&dir)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("node is needed for this test (Node 20+): {e:?}"));
        let mut out = NodeLines::read(node.stdout.take().unwrap());
        out.until(Duration::from_secs(20), |o| o.count("connected", None) >= 1).await;
        server.subscribed(1).await;

        // A change every 150 ms, before, during and after each expiry and reconnection.
        let http_token = TestApp::shop_token(domain);
        let mut made = Vec::new();
        let started = Instant::now();
        let mut last_round = None;
        while last_round.is_none_or(|round| made.len() < round + 5) {
            let created = server
                .graphql(
                    Some(&http_token),
                    "mutation($name: String) { aiModelCreate(input: { name: $name, version: \"1\" }) { aiModel { rowId } userErrors { field message } } }",
                    json!({ "name": format!("m{}", made.len()) }),
                )
                .await;
            let id = created["data"]["aiModelCreate"]["aiModel"]["rowId"].as_str().unwrap_or_else(|| panic!("{created}"));
            made.push(id.to_owned());
            if last_round.is_none() && out.count("connected", None) >= 4 {
                last_round = Some(made.len());
            }
            assert!(started.elapsed() < Duration::from_secs(40), "{:#?}", out.all());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        let last = made.last().unwrap().clone();
        out.until(Duration::from_secs(10), |o| {
            o.all().iter().any(|l| l["event"]["rowId"] == last.as_str())
        })
        .await;
        node.kill().await.unwrap();

        let lines = out.all();
        let seen: Vec<String> = lines
            .iter()
            .filter_map(|l| l["event"]["rowId"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(seen, made, "every change once, in order: {lines:#?}");
        assert!(out.count("closed", Some(json!(4403))) >= 3, "{lines:#?}");
        assert!(out.count("reason", Some(json!("TOKEN_EXPIRED"))) >= 3, "{lines:#?}");
        assert_eq!(out.count("error", None), 0, "{lines:#?}");
        assert!(issued.load(Ordering::Relaxed) >= 4);
    }
}

/// `change_events` holds the keys of every tenant's changes: a request (as `stratix_app`
/// under a user's, a shop's or anonymous claims) reads none of it; the service reads it
/// with its own rights (its pool, `service_role`, or `stratix_app` outside any request).
#[tokio::test]
async fn change_events_are_readable_by_the_service_only() {
    use sea_orm::{ConnectionTrait as _, DbBackend, Statement, TransactionTrait as _};
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let t = t.migrated().await;
    let user = fixtures::user(&t.db, "ada@example.com").await;
    let shop = fixtures::shop(&t.db, "a.myshopify.com").await;
    let count = "SELECT count(*) AS n FROM change_events";
    let read = |claims: Value| {
        let db = t.db.clone();
        async move {
            let request = api::db::RequestDb::begin(&db, &claims, api::db::Access::Read)
                .await
                .unwrap();
            let row = request
                .query_one_raw(Statement::from_string(DbBackend::Postgres, count))
                .await
                .unwrap()
                .unwrap();
            request.finish(api::db::End::Discard).await.unwrap();
            row.try_get::<i64>("", "n").unwrap()
        }
    };
    let as_app_role = {
        let txn = t.db.begin().await.unwrap();
        txn.execute_unprepared(&format!("SET LOCAL ROLE {}", migration::APP_ROLE))
            .await
            .unwrap();
        let row = txn
            .query_one_raw(Statement::from_string(DbBackend::Postgres, count))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    let pool: i64 = t.query(count, vec![]).await[0].try_get("", "n").unwrap();

    assert!(pool > 0, "the test made changes");
    assert_eq!(
        read(json!({ "role": "authenticated", "sub": user })).await,
        0
    );
    assert_eq!(
        read(json!({ "role": "authenticated", "shop_id": shop })).await,
        0
    );
    assert_eq!(read(json!({ "role": "anon" })).await, 0);
    assert_eq!(read(json!({ "role": "service_role" })).await, pool);
    assert_eq!(as_app_role, pool);
}
