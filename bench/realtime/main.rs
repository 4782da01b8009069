//! The realtime load benchmark (not a test; see bench/realtime/README.md).
//!
//! On PostgreSQL: a `stratix serve` process, `SUBSCRIBERS` WebSocket subscribers spread
//! evenly over `TENANTS` users (each `aiTaskUpdated(cloneId:)` on its user's clone), and
//! `RATE` task updates per second by plain SQL, spread over every user's tasks. Reports the
//! delivery latency from commit (the writer's UPDATE returning) to the subscriber, the
//! server's memory per idle subscription, and the CPU the server and PostgreSQL use.
//!
//!     cargo build --release --bin stratix --example realtime
//!     target/release/examples/realtime
//!
//! Environment: `DATABASE_URL` (a PostgreSQL server to create the bench database on, as a
//! user that may create databases; default: a throwaway cluster from the machine's server
//! binaries, as the tests do), `SUBSCRIBERS` (10000), `TENANTS` (1000), `RATE` (1000),
//! `SECONDS` (30), `WARMUP` (5).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use futures_util::{SinkExt, StreamExt};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use uuid::Uuid;

#[path = "../common.rs"]
mod common;

use common::{on_throwaway_database, serve, setting, stratix_binary};

const TASKS_PER_TENANT: usize = 10;
const QUERY: &str =
    "subscription($clone: ID) { aiTaskUpdated(cloneId: $clone) { cursor node { taskOutput } } }";

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// CPU time (user + system) of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// CPU ticks of every `postgres` process on the machine.
fn postgres_ticks() -> u64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(cpu_ticks)
        .sum()
}

async fn sql(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?)
}

/// Users with a clone and `TASKS_PER_TENANT` tasks each; returns (user, clone, tasks).
async fn seed(
    db: &DatabaseConnection,
    tenants: usize,
) -> anyhow::Result<Vec<(Uuid, Uuid, Vec<Uuid>)>> {
    db.execute_unprepared(&format!(
        "INSERT INTO users (id, email) SELECT gen_random_uuid(), 'bench-' || g || '@example.com' \
             FROM generate_series(1, {tenants}) g;
             INSERT INTO ai_clones (id, name, model_type, user_id) \
             SELECT gen_random_uuid(), 'clone', 'gpt', id FROM users;
             INSERT INTO ai_tasks (id, clone_id, task_name, user_id) \
             SELECT gen_random_uuid(), c.id, 'task ' || g, c.user_id \
             FROM ai_clones c, generate_series(1, {TASKS_PER_TENANT}) g;"
    ))
    .await?;
    let mut by_clone: HashMap<Uuid, (Uuid, Vec<Uuid>)> = HashMap::new();
    for row in sql(db, "SELECT user_id, clone_id, id FROM ai_tasks").await? {
        let user: Uuid = row.try_get_by_index(0)?;
        let clone: Uuid = row.try_get_by_index(1)?;
        let task: Uuid = row.try_get_by_index(2)?;
        by_clone
            .entry(clone)
            .or_insert((user, Vec::new()))
            .1
            .push(task);
    }
    Ok(by_clone
        .into_iter()
        .map(|(clone, (user, tasks))| (user, clone, tasks))
        .collect())
}

struct Shared {
    epoch: Instant,
    /// Per update: when its UPDATE returned (micros since `epoch`, 0 = not yet).
    committed: Vec<AtomicU64>,
    /// Deliveries of updates in the measured window: (update, received at, in micros since
    /// `epoch`). Latencies are computed at the end, when every commit time is known.
    received: Mutex<Vec<(u32, u64)>>,
    window: (u64, u64),
    errors: AtomicUsize,
    /// Subscribers connected and initialised.
    connected: AtomicUsize,
    /// Subscribers subscribed.
    subscribed: AtomicUsize,
    /// Opens once every subscriber is connected: then they subscribe.
    go: tokio::sync::watch::Receiver<bool>,
}

/// One subscriber: connects and initialises (then releases `permit`, so connections are
/// made a few hundred at a time), subscribes when `shared.go` opens, then records every
/// event.
async fn subscriber(
    addr: String,
    token: String,
    clone: Uuid,
    shared: Arc<Shared>,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> anyhow::Result<()> {
    let mut request = format!("ws://{addr}/graphql").into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), false).await?;
    let init = json!({
        "type": "connection_init",
        "payload": { "Authorization": format!("Bearer {token}") },
    });
    ws.send(Message::text(init.to_string())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(text))) if text.contains("connection_ack") => {}
        other => bail!("no connection_ack: {other:?}"),
    }
    shared.connected.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    let mut go = shared.go.clone();
    go.wait_for(|go| *go).await?;
    let subscribe = json!({
        "type": "subscribe",
        "id": "1",
        "payload": { "query": QUERY, "variables": { "clone": clone.to_string() } },
    });
    ws.send(Message::text(subscribe.to_string())).await?;
    shared.subscribed.fetch_add(1, Ordering::Relaxed);
    while let Some(message) = ws.next().await {
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let now = shared.epoch.elapsed().as_micros() as u64;
        let message: Value = serde_json::from_str(&text)?;
        if message["type"] != "next" {
            continue;
        }
        if message["payload"].get("errors").is_some() {
            shared.errors.fetch_add(1, Ordering::Relaxed);
            eprintln!("subscriber error: {}", message["payload"]);
            continue;
        }
        let seq = message["payload"]["data"]["aiTaskUpdated"]["node"]["taskOutput"]["seq"].as_u64();
        if let Some(seq) = seq.filter(|s| *s >= shared.window.0 && *s < shared.window.1)
            && let Ok(mut received) = shared.received.lock()
        {
            received.push((seq as u32, now));
        }
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[at]) / 1000.0
}

/// The benchmark's knobs.
struct Knobs {
    subscribers: usize,
    tenants: usize,
    rate: usize,
    seconds: usize,
    warmup: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let knobs = Knobs {
        subscribers: setting("SUBSCRIBERS", 10_000),
        tenants: setting("TENANTS", 1000),
        rate: setting("RATE", 1000),
        seconds: setting("SECONDS", 30),
        warmup: setting("WARMUP", 5),
    };
    let binary = stratix_binary("realtime")?;
    // It reads PostgreSQL's own figures (its backends' CPU, the change feed's table).
    let url = std::env::var("DATABASE_URL").unwrap_or_default();
    ensure!(
        !url.starts_with("sqlite:"),
        "the realtime benchmark runs on PostgreSQL"
    );
    on_throwaway_database(
        "realtime",
        |url| async move { run(&binary, &url, &knobs).await },
    )
    .await
}

async fn run(binary: &Path, url: &str, knobs: &Knobs) -> anyhow::Result<()> {
    let &Knobs {
        subscribers,
        tenants,
        rate,
        seconds,
        warmup,
    } = knobs;
    let db = api::db::connect_for_migrations(url).await?;
    Migrator::up(&db, None).await?;
    db.close().await?;
    let db = api::db::connect(url).await?;
    let world = seed(&db, tenants).await?;
    eprintln!(
        "seeded {} users with {TASKS_PER_TENANT} tasks each",
        world.len()
    );

    // Capacity, not the per-principal cost throttle (bench/throttle measures that).
    let env = [("STRATIX_THROTTLE", "false".to_owned())];
    let (mut server, addr) = serve(binary, url, &env).await?;
    let pid = server.id().context("server pid")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss(pid);

    let total = (warmup + seconds) * rate;
    let (open, go) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        committed: (0..total).map(|_| AtomicU64::new(0)).collect(),
        received: Mutex::new(Vec::with_capacity(
            seconds * rate * subscribers / tenants.max(1),
        )),
        window: ((warmup * rate) as u64, total as u64),
        errors: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        subscribed: AtomicUsize::new(0),
        go,
    });

    // Connect everyone (200 handshakes at a time), then subscribe everyone.
    let started = Instant::now();
    let gate = Arc::new(tokio::sync::Semaphore::new(200));
    for i in 0..subscribers {
        let (user, clone, _) = &world[i % world.len()];
        let (token, clone, addr, shared) = (
            common::token("authenticated", &user.to_string())?,
            *clone,
            addr.clone(),
            shared.clone(),
        );
        let permit = gate.clone().acquire_owned().await?;
        tokio::spawn(async move {
            if let Err(error) = subscriber(addr, token, clone, shared, permit).await {
                eprintln!("subscriber failed: {error:#}");
            }
        });
    }
    let all = |what: &str, count: &AtomicUsize| -> anyhow::Result<bool> {
        let seen = count.load(Ordering::Relaxed);
        if started.elapsed() > Duration::from_secs(300) {
            bail!("only {seen} subscribers {what}");
        }
        Ok(seen >= subscribers)
    };
    while !all("connected", &shared.connected)? {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_time = started.elapsed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_connected = rss(pid);
    open.send_replace(true);
    while !all("subscribed", &shared.subscribed)? {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_subscribed = rss(pid);
    eprintln!("{subscribers} subscribers connected in {connect_time:?}");

    // The load: `rate` updates per second by plain SQL, spread over every tenant's tasks.
    let tasks: Vec<Uuid> = world
        .iter()
        .flat_map(|(_, _, tasks)| tasks.iter().copied())
        .collect();
    let writers = api::db::connect(url).await?;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let statuses = ["pending", "in_progress", "completed", "failed"];
    let in_flight = Arc::new(tokio::sync::Semaphore::new(64));
    let mut window_start = None;
    let load_started = Instant::now();
    for seq in 0..total {
        if seq == warmup * rate {
            window_start = Some((
                Instant::now(),
                cpu_ticks(pid),
                postgres_ticks(),
                cpu_ticks(std::process::id()),
            ));
        }
        ticker.tick().await;
        // Consecutive updates hit different tenants.
        let task = tasks[(seq * 7919) % tasks.len()];
        let status = statuses[seq % statuses.len()];
        let (writers, shared) = (writers.clone(), shared.clone());
        let permit = in_flight.clone().acquire_owned().await?;
        tokio::spawn(async move {
            let update = Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE ai_tasks SET status = $1, task_output = jsonb_build_object('seq', $2::bigint) \
                 WHERE id = $3",
                [status.into(), (seq as i64).into(), task.into()],
            );
            match writers.execute_raw(update).await {
                Ok(_) => shared.committed[seq].store(
                    shared.epoch.elapsed().as_micros().max(1) as u64,
                    Ordering::Release,
                ),
                Err(error) => eprintln!("update failed: {error}"),
            }
            drop(permit);
        });
    }
    let load_time = load_started.elapsed();
    let (window_at, server_ticks, pg_ticks, bench_ticks) =
        window_start.context("no measured window")?;
    let wall = window_at.elapsed().as_secs_f64();
    let percent = |ticks: u64| ticks as f64 / 100.0 / wall * 100.0;
    let server_cpu = percent(cpu_ticks(pid).saturating_sub(server_ticks));
    let pg_cpu = percent(postgres_ticks().saturating_sub(pg_ticks));
    let bench_cpu = percent(cpu_ticks(std::process::id()).saturating_sub(bench_ticks));
    let rss_loaded = rss(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = server.kill().await;

    // An event can reach its subscriber before the writer's task notices its own commit
    // (both run in this process): such a latency counts as zero.
    let received = shared
        .received
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let mut latencies: Vec<u32> = received
        .iter()
        .filter_map(|(seq, at)| {
            let committed = shared.committed[*seq as usize].load(Ordering::Acquire);
            (committed > 0).then(|| at.saturating_sub(committed).min(u64::from(u32::MAX)) as u32)
        })
        .collect();
    latencies.sort_unstable();
    let per_tenant = subscribers as f64 / tenants as f64;
    let expected = (seconds * rate) as f64 * per_tenant;
    let mib = |bytes: u64| bytes as f64 / 1048576.0;
    let kib_each = |bytes: u64| bytes as f64 / 1024.0 / subscribers as f64;
    println!("| measure | value |");
    println!("|---|---|");
    println!("| subscribers (tenants) | {subscribers} ({tenants}; {per_tenant:.0} per tenant) |");
    println!(
        "| updates | {rate}/s for {seconds} s after {warmup} s warm-up (achieved {:.0}/s) |",
        total as f64 / load_time.as_secs_f64()
    );
    println!(
        "| deliveries received / expected | {} / {expected:.0} |",
        latencies.len()
    );
    for (label, p) in [
        ("p50", 0.50),
        ("p90", 0.90),
        ("p99", 0.99),
        ("p99.9", 0.999),
        ("max", 1.0),
    ] {
        println!(
            "| latency commit -> client {label} | {:.1} ms |",
            percentile(&latencies, p)
        );
    }
    println!(
        "| subscriber errors | {} |",
        shared.errors.load(Ordering::Relaxed)
    );
    println!(
        "| server RSS idle / connected / subscribed / under load | {:.1} / {:.1} / {:.1} / {:.1} MiB |",
        mib(rss_idle),
        mib(rss_connected),
        mib(rss_subscribed),
        mib(rss_loaded)
    );
    println!(
        "| memory per idle subscription, its connection included | {:.1} KiB (connection {:.1} KiB, subscription {:.1} KiB) |",
        kib_each(rss_subscribed.saturating_sub(rss_idle)),
        kib_each(rss_connected.saturating_sub(rss_idle)),
        kib_each(rss_subscribed.saturating_sub(rss_connected))
    );
    println!(
        "| connecting {subscribers} subscribers | {:.1} s |",
        connect_time.as_secs_f64()
    );
    println!(
        "| CPU under load: stratix / PostgreSQL / bench client | {server_cpu:.0}% / {pg_cpu:.0}% / {bench_cpu:.0}% of one core |"
    );
    Ok(())
}
