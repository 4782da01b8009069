//! The throttling benchmark (not a test; see bench/throttle/README.md): one principal
//! floods `stratix serve` while another measures its own latency, with the throttle on and
//! off.
//!
//! ```sh
//! cargo build --release --bin stratix --example throttle
//! target/release/examples/throttle
//! ```
//!
//! Environment: `DATABASE_URL` (as for bench/queue: a PostgreSQL server to create the bench
//! database on, or `sqlite://<new file>?mode=rwc`; default: a throwaway PostgreSQL cluster
//! from the machine's server binaries), `FLOODERS` (connections of the flooding user, 16),
//! `FLOOD_RATE` (its requests per second in all, 0: as fast as they answer),
//! `CONTROL_RATE` (the control's requests per second, 100), `THROTTLE_MAXIMUM` and
//! `THROTTLE_RESTORE_RATE` (the server's buckets, 10,000 points and 2,500/s, so that the
//! control keeps within its own), `SECONDS` (measured per phase, 10), `WARMUP` (2),
//! `SERVER_LOG` (`warn`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

#[path = "../common.rs"]
mod common;

use common::{on_throwaway_database, setting, stratix_binary};

/// The control's read: 20 of its own tasks (cost 22).
const CONTROL: &str = "{ aiTasks(first: 20) { nodes { id status taskName } } }";
/// The flood's read: 100 tasks with their clone (cost 202), real work when it runs.
const FLOOD: &str = "{ aiTasks(first: 100) { nodes { id status taskName clone { name } } } }";

struct Knobs {
    flooders: usize,
    flood_rate: usize,
    control_rate: usize,
    maximum: usize,
    restore_rate: usize,
    seconds: u64,
    warmup: u64,
}

/// Two users, `flood@` and `control@`, each with a clone and 500 tasks; their ids.
async fn seed(db: &DatabaseConnection) -> anyhow::Result<(Uuid, Uuid)> {
    db.execute_unprepared(
        "INSERT INTO users (email) VALUES ('flood@bench.example'), ('control@bench.example')",
    )
    .await?;
    db.execute_unprepared(
        "INSERT INTO ai_clones (name, model_type, user_id) SELECT 'clone', 'gpt', id FROM users",
    )
    .await?;
    db.execute_unprepared(
        "INSERT INTO ai_tasks (clone_id, user_id, task_name, status) \
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 500) \
         SELECT c.id, c.user_id, 'summarise', 'pending' FROM ai_clones c, g",
    )
    .await?;
    db.execute_unprepared("ANALYZE").await?;
    let mut ids = Vec::new();
    for email in ["flood@bench.example", "control@bench.example"] {
        let statement = Statement::from_string(
            db.get_database_backend(),
            format!("SELECT id FROM users WHERE email = '{email}'"),
        );
        let row = db.query_one_raw(statement).await?.context("no user")?;
        ids.push(row.try_get_by_index::<Uuid>(0)?);
    }
    Ok((ids[0], ids[1]))
}

/// Starts `stratix serve` on `url` with the throttle on or off; the process and its
/// `/graphql` URL.
async fn serve(
    binary: &Path,
    url: &str,
    throttle: bool,
    knobs: &Knobs,
) -> anyhow::Result<(tokio::process::Child, String)> {
    let env = [
        ("STRATIX_JOBS", "false".to_owned()),
        ("STRATIX_THROTTLE", throttle.to_string()),
        ("STRATIX_THROTTLE_MAXIMUM", knobs.maximum.to_string()),
        (
            "STRATIX_THROTTLE_RESTORE_RATE",
            knobs.restore_rate.to_string(),
        ),
    ];
    let (server, addr) = common::serve(binary, url, &env).await?;
    Ok((server, format!("http://{addr}/graphql")))
}

/// POSTs `query` with `authorization`; the answer's first error code, if any.
async fn post(
    http: &reqwest::Client,
    url: &str,
    authorization: &str,
    query: &str,
) -> anyhow::Result<Option<String>> {
    let text = http
        .post(url)
        .header("authorization", authorization)
        .header("content-type", "application/json")
        .body(json!({ "query": query }).to_string())
        .send()
        .await?
        .text()
        .await?;
    let body: Value = serde_json::from_str(&text)?;
    Ok(body["errors"][0]["extensions"]["code"]
        .as_str()
        .map(str::to_owned))
}

/// What one phase measured.
#[derive(Default)]
struct Measured {
    control: Vec<u32>,
    control_errors: u64,
    flood_answered: u64,
    flood_throttled: u64,
}

/// Runs the control (and `flooders` flooding connections, if any) for the warm-up and the
/// window; what fell in the window.
async fn phase(
    url: &str,
    control: &str,
    flood: &str,
    flooders: usize,
    knobs: &Knobs,
) -> anyhow::Result<Measured> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(flooders + 1)
        .build()?;
    let start = Instant::now();
    let window =
        Duration::from_secs(knobs.warmup)..Duration::from_secs(knobs.warmup + knobs.seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, throttled) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut flooding = Vec::new();
    for _ in 0..flooders {
        let (http, url, flood) = (http.clone(), url.to_owned(), flood.to_owned());
        let (stop, answered, throttled) = (stop.clone(), answered.clone(), throttled.clone());
        let window = window.clone();
        let pace = (knobs.flood_rate > 0)
            .then(|| Duration::from_secs_f64(flooders as f64 / knobs.flood_rate as f64));
        flooding.push(tokio::spawn(async move {
            let mut tick = pace.map(tokio::time::interval);
            while !stop.load(Ordering::Relaxed) {
                if let Some(tick) = &mut tick {
                    tick.tick().await;
                }
                let code = post(&http, &url, &flood, FLOOD).await;
                if !window.contains(&start.elapsed()) {
                    continue;
                }
                match code {
                    Ok(Some(code)) if code == "THROTTLED" => {
                        throttled.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => answered.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let mut measured = Measured::default();
    // The control keeps within its budget, as a well-behaved client does.
    let mut pace = tokio::time::interval(Duration::from_secs_f64(
        1.0 / knobs.control_rate.max(1) as f64,
    ));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while start.elapsed() < window.end {
        pace.tick().await;
        let began = Instant::now();
        let code = post(&http, url, control, CONTROL).await;
        let at = start.elapsed();
        if window.contains(&at) && at.saturating_sub(began.elapsed()) >= window.start {
            measured
                .control
                .push(u32::try_from(began.elapsed().as_micros()).unwrap_or(u32::MAX));
            if !matches!(code, Ok(None)) {
                measured.control_errors += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in flooding {
        task.await?;
    }
    measured.flood_answered = answered.load(Ordering::Relaxed);
    measured.flood_throttled = throttled.load(Ordering::Relaxed);
    Ok(measured)
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank]) / 1000.0
}

fn report(name: &str, mut measured: Measured, seconds: u64) {
    measured.control.sort_unstable();
    let c = &measured.control;
    let per_second = |n: u64| n as f64 / seconds as f64;
    println!(
        "| {name} | {:.2} | {:.2} | {:.2} | {:.0} | {} | {:.0} | {:.0} |",
        percentile(c, 50.0),
        percentile(c, 99.0),
        percentile(c, 100.0),
        per_second(c.len() as u64),
        measured.control_errors,
        per_second(measured.flood_answered),
        per_second(measured.flood_throttled),
    );
}

async fn run(binary: &Path, url: &str, knobs: &Knobs) -> anyhow::Result<()> {
    let db = api::db::connect_for_migrations(url).await?;
    Migrator::up(&db, None).await?;
    db.close().await?;
    let db = api::db::connect(url).await?;
    let (flooder, controller) = seed(&db).await?;
    db.close().await?;
    let flood = format!(
        "Bearer {}",
        common::token("authenticated", &flooder.to_string())?
    );
    let control = format!(
        "Bearer {}",
        common::token("authenticated", &controller.to_string())?
    );
    println!(
        "{} flooding connections ({}); the control at {} requests/s; buckets of {} points \
         restoring {}/s; {} s measured per phase",
        knobs.flooders,
        match knobs.flood_rate {
            0 => "as fast as answered".to_owned(),
            n => format!("{n} requests/s in all"),
        },
        knobs.control_rate,
        knobs.maximum,
        knobs.restore_rate,
        knobs.seconds
    );
    println!();
    println!(
        "| phase | control p50 ms | control p99 ms | control max ms | control req/s | control errors | flood answered/s | flood throttled/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, throttle, flooders) in [
        ("control alone", true, 0),
        ("flood, throttle on", true, knobs.flooders),
        ("flood, throttle off", false, knobs.flooders),
    ] {
        let (mut server, url) = serve(binary, url, throttle, knobs).await?;
        let measured = phase(&url, &control, &flood, flooders, knobs).await;
        let _ = server.kill().await;
        report(name, measured?, knobs.seconds);
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let knobs = Knobs {
        flooders: setting("FLOODERS", 16),
        flood_rate: setting("FLOOD_RATE", 0),
        control_rate: setting("CONTROL_RATE", 100),
        maximum: setting("THROTTLE_MAXIMUM", 10_000),
        restore_rate: setting("THROTTLE_RESTORE_RATE", 2_500),
        seconds: setting("SECONDS", 10) as u64,
        warmup: setting("WARMUP", 2) as u64,
    };
    let binary = stratix_binary("throttle")?;
    on_throwaway_database(
        "throttle",
        |url| async move { run(&binary, &url, &knobs).await },
    )
    .await
}
