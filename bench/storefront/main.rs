//! The storefront load benchmark (not a test; see bench/storefront/README.md).
//!
//! Against a `stratix serve` process over HTTP, with one installed shop's public ingest
//! key, two workloads one after the other:
//!
//! - `events`: `SENDERS` clients, each looping `POST /events` with batches of `BATCH` new
//!   events. Reports events stored per second and the batch latency, then checks by SQL
//!   that every event sent was stored once.
//! - `assign`: `CONCURRENCY` clients, each looping `experimentAssign` for a new visitor of
//!   one running experiment (a 50/50 split). Reports requests per second and their latency,
//!   then checks by SQL that there is one assignment per request.
//!
//! ```sh
//! cargo build --release --bin stratix --example storefront
//! target/release/examples/storefront
//! ```
//!
//! Environment: `DATABASE_URL` (a PostgreSQL server to create the bench database on, as a
//! user that may create databases, or `sqlite://<new file>?mode=rwc` for SQLite; default: a
//! throwaway PostgreSQL cluster from the machine's server binaries, as the tests do),
//! `WORKLOAD` (`events`, `assign` or `both`), `SENDERS` (4), `BATCH` (1000), `CONCURRENCY`
//! (16), `SECONDS` (10, measured), `WARMUP` (2), `SERVER_LOG` (`warn`);
//! `DATABASE_POOL_SIZE` reaches the server.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

#[path = "../common.rs"]
#[expect(dead_code, reason = "the storefront signs no user tokens")]
mod common;

use common::{on_throwaway_database, serve, setting, stratix_binary};

const ASSIGN: &str = "mutation($e: ID!, $a: String!) { experimentAssign(input: \
                      {experimentId: $e, anonId: $a}) { variant userErrors { code message } } }";

struct Knobs {
    workload: String,
    senders: usize,
    batch: usize,
    concurrency: usize,
    seconds: u64,
    warmup: u64,
}

/// The measured window: what finished in it, and the latencies of what lay wholly in it.
struct Window {
    from: Instant,
    to: Instant,
    stop: AtomicBool,
    done: AtomicU64,
    errors: AtomicU64,
}

impl Window {
    fn new(knobs: &Knobs) -> Arc<Self> {
        let from = Instant::now() + Duration::from_secs(knobs.warmup);
        Arc::new(Self {
            from,
            to: from + Duration::from_secs(knobs.seconds),
            stop: AtomicBool::new(false),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    fn record(&self, began: Instant, latencies: &mut Vec<u32>) {
        let now = Instant::now();
        if now >= self.from && now < self.to {
            self.done.fetch_add(1, Ordering::Relaxed);
            if began >= self.from {
                latencies.push(began.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
        }
    }

    fn error(&self, what: &str, error: &anyhow::Error) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("{what} failed: {error:#}");
        }
    }
}

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    Ok(db.query_all_raw(statement).await?)
}

async fn count(db: &DatabaseConnection, sql: &str) -> anyhow::Result<i64> {
    Ok(rows(db, sql).await?[0].try_get_by_index(0)?)
}

/// One installed shop and its running experiment; returns the shop's ingest key and the
/// experiment's global id.
async fn seed(db: &DatabaseConnection) -> anyhow::Result<(String, String)> {
    use sea_orm::sea_query::{Expr, ExprTrait as _, Query};
    let (shop, experiment) = (Uuid::new_v4(), Uuid::new_v4());
    let mut shops = Query::insert();
    shops
        .into_table("shops")
        .columns(["id", "domain", "access_token_enc"])
        .values([
            Expr::val(shop),
            Expr::val("bench.myshopify.com"),
            Expr::val(vec![1u8, 2, 3]),
        ])?;
    db.execute(&shops).await?;
    let mut experiments = Query::insert();
    experiments
        .into_table("experiments")
        .columns([
            "id",
            "name",
            "target",
            "allocation",
            "variants",
            "status",
            "started_at",
            "shop_id",
        ])
        .values([
            Expr::val(experiment),
            Expr::val("cta"),
            Expr::val("product_page:cta"),
            Expr::val(json!({ "control": 0.5, "b": 0.5 })),
            Expr::val(json!({ "control": {}, "b": {} })),
            Expr::val("running"),
            Expr::val(chrono::Utc::now()),
            Expr::val(shop),
        ])?;
    db.execute(&experiments).await?;
    let mut key = Query::select();
    key.from("shops")
        .column("ingest_key")
        .and_where(Expr::col("id").eq(shop));
    let key: String = db
        .query_one(&key)
        .await?
        .context("no shop")?
        .try_get_by_index(0)?;
    Ok((key, format!("gid://stratix/Experiment/{experiment}")))
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    async fn post(&self, path: &str, body: String) -> anyhow::Result<Value> {
        let reply = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("x-stratix-ingest-key", &self.key)
            .body(body)
            .send()
            .await?;
        let status = reply.status();
        let reply: Value = serde_json::from_slice(&reply.bytes().await?)
            .with_context(|| format!("HTTP {status}: not JSON"))?;
        if !status.is_success() || reply.get("errors").is_some() {
            bail!("HTTP {status}: {reply}");
        }
        Ok(reply)
    }
}

/// Sends batches of new events until the window closes; returns the batch latencies and
/// how many events it sent.
async fn sender(client: Client, window: Arc<Window>, n: usize, batch: usize) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut sent = 0u64;
    let mut seq = 0usize;
    while !window.stop.load(Ordering::Relaxed) {
        let ts = chrono::Utc::now().to_rfc3339();
        let events: Vec<Value> = (0..batch)
            .map(|i| {
                seq += 1;
                json!({ "id": format!("{n}-{seq}"), "type": if i % 10 == 0 { "add_to_cart" } else { "page_view" },
                        "ts": ts, "anonId": format!("visitor-{}", seq % 5000), "sessionId": format!("s-{}", seq % 700),
                        "props": { "url": "/products/hat", "value": i } })
            })
            .collect();
        let body = json!({ "events": events }).to_string();
        let began = Instant::now();
        match client.post("/events", body).await {
            Ok(reply) if reply["stored"] == json!(batch) => {
                sent += batch as u64;
                window.record(began, &mut latencies);
            }
            Ok(reply) => window.error("POST /events", &anyhow::anyhow!("{reply}")),
            Err(error) => window.error("POST /events", &error),
        }
    }
    (latencies, sent)
}

/// Assigns new visitors until the window closes; returns the latencies and how many it
/// assigned.
async fn assigner(
    client: Client,
    window: Arc<Window>,
    n: usize,
    experiment: String,
) -> (Vec<u32>, u64) {
    let mut latencies = Vec::new();
    let mut assigned = 0u64;
    let mut seq = 0usize;
    while !window.stop.load(Ordering::Relaxed) {
        seq += 1;
        let body = json!({ "query": ASSIGN, "variables": { "e": experiment, "a": format!("v-{n}-{seq}") } }).to_string();
        let began = Instant::now();
        match client.post("/graphql", body).await {
            Ok(reply) if reply["data"]["experimentAssign"]["variant"].is_string() => {
                assigned += 1;
                window.record(began, &mut latencies);
            }
            Ok(reply) => window.error("experimentAssign", &anyhow::anyhow!("{reply}")),
            Err(error) => window.error("experimentAssign", &error),
        }
    }
    (latencies, assigned)
}

/// Runs `clients` until the window closes; returns the window and what they returned.
async fn drive(
    knobs: &Knobs,
    clients: usize,
    start: impl Fn(Arc<Window>, usize) -> tokio::task::JoinHandle<(Vec<u32>, u64)>,
) -> anyhow::Result<(Arc<Window>, Vec<u32>, u64)> {
    let window = Window::new(knobs);
    let handles: Vec<_> = (0..clients).map(|n| start(window.clone(), n)).collect();
    tokio::time::sleep_until(window.to.into()).await;
    window.stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut total) = (Vec::new(), 0);
    for handle in handles {
        let (mut l, n) = handle.await?;
        latencies.append(&mut l);
        total += n;
    }
    latencies.sort_unstable();
    Ok((window, latencies, total))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[index]) / 1000.0
}

fn report(what: &str, per_second: f64, unit: &str, latencies: &[u32], errors: u64) {
    println!("| {what} | {per_second:.0} {unit} |");
    println!(
        "| {what}: latency p50 / p99 / max | {:.1} / {:.1} / {:.1} ms |",
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 1.0)
    );
    println!("| {what}: errors | {errors} |");
}

async fn run(binary: &Path, url: &str, knobs: &Knobs) -> anyhow::Result<()> {
    let db = api::db::connect_for_migrations(url).await?;
    Migrator::up(&db, None).await?;
    db.close().await?;
    let db = api::db::connect(url).await?;
    let (key, experiment) = seed(&db).await?;
    // One client address sends everything here: its bucket must not be what is measured.
    let unreached = "1000000000".to_owned();
    let env = [
        ("STRATIX_THROTTLE_MAXIMUM", unreached.clone()),
        ("STRATIX_THROTTLE_RESTORE_RATE", unreached),
        ("STRATIX_JOBS", "false".to_owned()),
    ];
    let (mut server, addr) = serve(binary, url, &env).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(knobs.senders.max(knobs.concurrency))
        .build()?;
    let client = Client {
        http,
        base: format!("http://{addr}"),
        key,
    };
    println!("| measure | value |");
    println!("|---|---|");
    let seconds = knobs.seconds as f64;
    let result = async {
        if knobs.workload != "assign" {
            let batch = knobs.batch;
            let (window, latencies, sent) = drive(knobs, knobs.senders, |window, n| {
                tokio::spawn(sender(client.clone(), window, n, batch))
            })
            .await?;
            let rate = window.done.load(Ordering::Relaxed) as f64 * batch as f64 / seconds;
            report(
                &format!("events, batches of {batch}, {} senders", knobs.senders),
                rate,
                "events/s",
                &latencies,
                window.errors.load(Ordering::Relaxed),
            );
            let stored = count(&db, "SELECT COUNT(*) FROM events").await?;
            ensure!(stored as u64 == sent, "{sent} events sent, {stored} stored");
        }
        if knobs.workload != "events" {
            let (window, latencies, assigned) = drive(knobs, knobs.concurrency, |window, n| {
                tokio::spawn(assigner(client.clone(), window, n, experiment.clone()))
            })
            .await?;
            let rate = window.done.load(Ordering::Relaxed) as f64 / seconds;
            report(
                &format!("experimentAssign, concurrency {}", knobs.concurrency),
                rate,
                "req/s",
                &latencies,
                window.errors.load(Ordering::Relaxed),
            );
            let stored = count(&db, "SELECT COUNT(*) FROM assignments").await?;
            ensure!(
                stored as u64 == assigned,
                "{assigned} assigned, {stored} rows"
            );
        }
        anyhow::Ok(())
    }
    .await;
    let _ = server.kill().await;
    db.close().await?;
    result
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let knobs = Knobs {
        workload: std::env::var("WORKLOAD").unwrap_or_else(|_| "both".to_owned()),
        senders: setting("SENDERS", 4),
        batch: setting("BATCH", 1000),
        concurrency: setting("CONCURRENCY", 16),
        seconds: setting("SECONDS", 10) as u64,
        warmup: setting("WARMUP", 2) as u64,
    };
    let binary = stratix_binary("storefront")?;
    on_throwaway_database("storefront", |url| async move {
        run(&binary, &url, &knobs).await
    })
    .await
}
