//! The queue and credits load benchmark (not a test; see bench/queue/README.md).
//!
//! Against a `stratix serve` process over HTTP, two workloads one after the other:
//!
//! - `queue`: `WORKERS` workers, each looping `aiTaskClaim` then `aiTaskComplete` as
//!   `service_role`, over `TASKS` pending tasks of `USERS` users (one clone each). Reports
//!   completed tasks per second and the latency of the claim and of the completion, then
//!   checks by SQL that every claimed task was completed exactly once.
//! - `spends`: `SPENDERS` clients of one user, each looping `creditsSpend(amount: 1)` on the
//!   same account (its row lock serialises them). Reports spends per second and their
//!   latency, then checks by SQL that the balance equals the sum of the ledger.
//!
//! ```sh
//! cargo build --release --bin stratix --example queue
//! target/release/examples/queue
//! ```
//!
//! Environment: `DATABASE_URL` (a PostgreSQL server to create the bench database on, as a
//! user that may create databases, or `sqlite://<new file>?mode=rwc` for SQLite; default: a
//! throwaway PostgreSQL cluster from the machine's server binaries, as the tests do),
//! `WORKLOAD` (`queue`, `spends` or `both`), `WORKERS` (8), `TASKS` (10000), `USERS` (100),
//! `SPENDERS` (8), `SECONDS` (20, measured), `WARMUP` (3), `SERVER_LOG` (the server's
//! `RUST_LOG`, `warn`); `DATABASE_POOL_SIZE` reaches the server.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::{Value, json};
use uuid::Uuid;

#[path = "../common.rs"]
mod common;

use common::{on_throwaway_database, serve, setting, stratix_binary, token};

const SPENDER: &str = "spender@bench.example";
/// What the spender is granted before the run (the account is an `integer`).
const GRANT: i64 = 1_000_000_000;
const CLAIM: &str = "mutation { aiTaskClaim(input: {leaseSeconds: 60}) { aiTask { id } leaseId \
                     userErrors { code message } } }";
const COMPLETE: &str = "mutation($task: ID!, $lease: String!, $output: JSON) { \
                        aiTaskComplete(input: {taskId: $task, leaseId: $lease, output: $output}) \
                        { userErrors { code message } } }";
const SPEND: &str = "mutation { creditsSpend(input: {amount: 1}) { userErrors { code message } } }";

/// The benchmark's knobs.
struct Knobs {
    workload: String,
    workers: usize,
    tasks: usize,
    users: usize,
    spenders: usize,
    seconds: usize,
    warmup: usize,
}

/// CPU time (user + system, in 1/100 s) of the processes `pick` accepts by pid, parent pid
/// and command.
fn cpu_ticks(mut pick: impl FnMut(u32, u32, &str) -> bool) -> u64 {
    let stats = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    stats
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (command) state ppid ...`: the command may hold spaces and parentheses.
            let (head, rest) = stat.rsplit_once(')')?;
            let command = head.split_once('(')?.1;
            let fields: Vec<u64> = rest
                .split_whitespace()
                .skip(1)
                .map(|v| v.parse().unwrap_or(0))
                .collect();
            let parent = fields.first().copied().unwrap_or(0) as u32;
            let ticks = fields.get(10..12).map_or(0, |t| t.iter().sum());
            pick(pid, parent, command).then_some(ticks)
        })
        .sum()
}

/// The server under load and its database.
struct Target {
    /// The `stratix serve` process.
    server: u32,
    /// The PostgreSQL server's main process, when it runs on this machine.
    postmaster: Option<u32>,
    sqlite: bool,
}

/// CPU ticks of the server, of the database (the processes of `postmaster`, or every
/// `postgres` process when it is not known), and of this process.
fn cpu_now(
    &Target {
        server, postmaster, ..
    }: &Target,
) -> [u64; 3] {
    let me = std::process::id();
    let database = |pid: u32, parent: u32, command: &str| match postmaster {
        Some(p) => pid == p || parent == p,
        None => command == "postgres",
    };
    [
        cpu_ticks(|pid, _, _| pid == server),
        cpu_ticks(database),
        cpu_ticks(|pid, _, _| pid == me),
    ]
}

/// The pid of the PostgreSQL server `db` is connected to, when it runs on this machine.
async fn postmaster(db: &DatabaseConnection) -> Option<u32> {
    let row = rows(db, "SELECT pg_backend_pid()")
        .await
        .ok()?
        .into_iter()
        .next()?;
    let backend: i32 = row.try_get_by_index(0).ok()?;
    let mut parent = None;
    cpu_ticks(|pid, ppid, _| {
        if pid == backend as u32 {
            parent = Some(ppid);
        }
        false
    });
    parent
}

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    let statement = Statement::from_string(db.get_database_backend(), sql);
    Ok(db.query_all_raw(statement).await?)
}

/// `USERS` users, each with one clone and its share of `TASKS` pending tasks of mixed
/// priorities, and the spender (the sign-up trigger gives every user a credit account).
/// Portable SQL: it runs on both backends.
async fn seed(db: &DatabaseConnection, knobs: &Knobs) -> anyhow::Result<()> {
    let users = knobs.users.max(1);
    let per_user = knobs.tasks.div_ceil(users);
    let emails: Vec<String> = (1..=users)
        .map(|n| format!("('bench-{n}@bench.example')"))
        .chain([format!("('{SPENDER}')")])
        .collect();
    for chunk in emails.chunks(500) {
        let values = chunk.join(", ");
        db.execute_unprepared(&format!("INSERT INTO users (email) VALUES {values}"))
            .await?;
    }
    db.execute_unprepared(
        "INSERT INTO ai_clones (name, model_type, user_id) \
         SELECT 'clone', 'gpt', id FROM users WHERE email LIKE 'bench-%'",
    )
    .await?;
    db.execute_unprepared(&format!(
        "INSERT INTO ai_tasks (clone_id, user_id, task_name, priority, status) \
         WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < {per_user}) \
         SELECT c.id, c.user_id, 'summarise', \
           CASE n % 4 WHEN 0 THEN 'low' WHEN 1 THEN 'medium' WHEN 2 THEN 'high' ELSE 'urgent' END, \
           'pending' \
         FROM ai_clones c, g"
    ))
    .await?;
    // The grant: its ledger row and the balance in one transaction (a trigger checks that
    // the balance is the sum of the ledger).
    let account = format!(
        "FROM credit_accounts WHERE user_id = (SELECT id FROM users WHERE email = '{SPENDER}')"
    );
    let grant = db.begin().await?;
    grant
        .execute_unprepared(&format!(
            "INSERT INTO credit_transactions \
               (credit_account_id, amount, balance_after, kind, description, user_id) \
             SELECT id, {GRANT}, balance + {GRANT}, 'adjustment', 'queue bench', user_id {account}"
        ))
        .await?;
    grant
        .execute_unprepared(&format!(
            "UPDATE credit_accounts SET balance = balance + {GRANT}, \
               lifetime_earned = lifetime_earned + {GRANT} \
             WHERE id = (SELECT id {account})"
        ))
        .await?;
    grant.commit().await?;
    // Statistics, as autovacuum would have them for a queue that filled over time.
    db.execute_unprepared("ANALYZE").await?;
    Ok(())
}

/// The measured window of a load and what falls in it.
struct Window {
    start: Instant,
    warmup: Duration,
    seconds: usize,
    stop: AtomicBool,
    /// Operations finished, per second of the window.
    per_second: Vec<AtomicU64>,
    /// Operations finished in all, the warm-up and the tail included.
    done: AtomicU64,
    errors: AtomicU64,
}

impl Window {
    fn new(knobs: &Knobs) -> Arc<Self> {
        Arc::new(Self {
            start: Instant::now(),
            warmup: Duration::from_secs(knobs.warmup as u64),
            seconds: knobs.seconds,
            stop: AtomicBool::new(false),
            per_second: (0..knobs.seconds).map(|_| AtomicU64::new(0)).collect(),
            done: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    /// The second of the window `at` falls in, if any.
    fn second(&self, at: Instant) -> Option<usize> {
        let since = at.checked_duration_since(self.start + self.warmup)?;
        Some(since.as_secs() as usize).filter(|s| *s < self.seconds)
    }

    /// Counts an operation that began at `began` and ended now; `steps` are its steps'
    /// latencies, kept in `latencies` (one list a step) when it lies wholly in the window.
    fn record(&self, began: Instant, steps: &[Duration], latencies: &mut [Vec<u32>]) {
        let now = Instant::now();
        self.done.fetch_add(1, Ordering::Relaxed);
        if let Some(second) = self.second(now) {
            self.per_second[second].fetch_add(1, Ordering::Relaxed);
            if self.second(began).is_some() {
                for (list, step) in latencies.iter_mut().zip(steps) {
                    list.push(step.as_micros().min(u128::from(u32::MAX)) as u32);
                }
            }
        }
    }

    fn error(&self, what: &str, error: &anyhow::Error) {
        if self.errors.fetch_add(1, Ordering::Relaxed) < 10 {
            eprintln!("{what} failed: {error:#}");
        }
    }
}

/// A GraphQL client of the server, with one token.
#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    url: String,
    authorization: String,
}

impl Client {
    /// Runs `query`; returns `data.<field>` when there are no errors and no user errors.
    async fn run(&self, query: &str, variables: Value, field: &str) -> anyhow::Result<Value> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let reply = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("authorization", &self.authorization)
            .body(body)
            .send()
            .await?;
        let status = reply.status();
        let mut reply: Value = serde_json::from_slice(&reply.bytes().await?)
            .with_context(|| format!("HTTP {status}: not JSON"))?;
        if let Some(errors) = reply.get("errors") {
            bail!("{field}: {errors}");
        }
        let payload = reply["data"][field].take();
        if payload["userErrors"] != json!([]) {
            bail!("{field}: {}", payload["userErrors"]);
        }
        Ok(payload)
    }
}

/// One queue worker: claims and completes tasks until the window closes or the queue is
/// empty. Returns the global ids it claimed and the claim and completion latencies.
async fn worker(client: Client, window: Arc<Window>, n: usize) -> (Vec<String>, [Vec<u32>; 2]) {
    let mut claimed = Vec::new();
    let mut latencies = [Vec::new(), Vec::new()];
    while !window.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        let task = match client.run(CLAIM, json!({}), "aiTaskClaim").await {
            Ok(claim) => match (claim["aiTask"]["id"].as_str(), claim["leaseId"].as_str()) {
                (Some(task), Some(lease)) => (task.to_owned(), lease.to_owned()),
                _ => {
                    eprintln!("worker {n}: the queue is empty");
                    break;
                }
            },
            Err(error) => {
                window.error("aiTaskClaim", &error);
                continue;
            }
        };
        let claim = began.elapsed();
        let (task, lease) = task;
        let variables = json!({ "task": task, "lease": lease, "output": { "worker": n } });
        claimed.push(task);
        let completed = client.run(COMPLETE, variables, "aiTaskComplete").await;
        match completed {
            Ok(_) => window.record(began, &[claim, began.elapsed() - claim], &mut latencies),
            Err(error) => window.error("aiTaskComplete", &error),
        }
    }
    (claimed, latencies)
}

/// One spender: spends one credit at a time until the window closes.
async fn spender(client: Client, window: Arc<Window>) -> [Vec<u32>; 1] {
    let mut latencies = [Vec::new()];
    while !window.stop.load(Ordering::Relaxed) {
        let began = Instant::now();
        match client.run(SPEND, json!({}), "creditsSpend").await {
            Ok(_) => window.record(began, &[began.elapsed()], &mut latencies),
            Err(error) => window.error("creditsSpend", &error),
        }
    }
    latencies
}

/// Starts `count` clients (`start(window, n)`) and runs them until the window closes;
/// returns the window, what they return, and the server's, PostgreSQL's and this process's
/// CPU over the window, in percent of one core.
async fn drive<T: Send + 'static>(
    knobs: &Knobs,
    target: &Target,
    count: usize,
    start: impl Fn(Arc<Window>, usize) -> tokio::task::JoinHandle<T>,
) -> anyhow::Result<(Arc<Window>, Vec<T>, [f64; 3])> {
    let window = Window::new(knobs);
    let clients: Vec<_> = (0..count).map(|n| start(window.clone(), n)).collect();
    tokio::time::sleep_until((window.start + window.warmup).into()).await;
    let before = cpu_now(target);
    tokio::time::sleep(Duration::from_secs(window.seconds as u64)).await;
    let after = cpu_now(target);
    window.stop.store(true, Ordering::Relaxed);
    let mut results = Vec::new();
    for client in clients {
        results.push(client.await?);
    }
    let seconds = window.seconds.max(1) as f64;
    let cpu = [0, 1, 2].map(|i| after[i].saturating_sub(before[i]) as f64 / seconds);
    Ok((window, results, cpu))
}

/// Rows of the report common to both workloads.
fn report(window: &Window, what: &str, steps: &[(&str, Vec<u32>)], cpu: [f64; 3], sqlite: bool) {
    let per_second: Vec<u64> = window
        .per_second
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect();
    let total: u64 = per_second.iter().sum();
    let seconds = window.seconds.max(1);
    println!(
        "| {what}/s over {seconds} s after {} s warm-up | **{:.0}** |",
        window.warmup.as_secs(),
        total as f64 / seconds as f64
    );
    let (low, high) = (per_second.iter().min(), per_second.iter().max());
    let (first, last) = (per_second.first(), per_second.last());
    if let (Some(low), Some(high), Some(first), Some(last)) = (low, high, first, last) {
        println!(
            "| {what}/s, slowest / fastest second; first / last | {low} / {high}; {first} / {last} |"
        );
    }
    for (step, list) in steps {
        let mut list = list.clone();
        list.sort_unstable();
        let at = |p: f64| {
            let i = ((list.len().max(1) - 1) as f64 * p).round() as usize;
            list.get(i).map_or(f64::NAN, |v| f64::from(*v) / 1000.0)
        };
        println!(
            "| {step} latency p50 / p99 / max | {:.2} / {:.2} / {:.2} ms |",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    println!("| errors | {} |", window.errors.load(Ordering::Relaxed));
    let [server, pg, bench] = cpu;
    if sqlite {
        println!(
            "| CPU: stratix (SQLite inside) / bench | {server:.0}% / {bench:.0}% of one core |"
        );
    } else {
        println!(
            "| CPU: stratix / PostgreSQL / bench | {server:.0}% / {pg:.0}% / {bench:.0}% of one core |"
        );
    }
}

async fn queue(
    knobs: &Knobs,
    service: &Client,
    db: &DatabaseConnection,
    target: &Target,
) -> anyhow::Result<()> {
    let (window, results, cpu) = drive(knobs, target, knobs.workers, |window, n| {
        tokio::spawn(worker(service.clone(), window, n))
    })
    .await?;
    let mut claimed = Vec::new();
    let mut steps = [("claim", Vec::new()), ("complete", Vec::new())];
    for (ids, [claims, completes]) in results {
        claimed.extend(ids);
        steps[0].1.extend(claims);
        steps[1].1.extend(completes);
    }
    println!(
        "| queue: {} workers, {} tasks of {} users | |",
        knobs.workers, knobs.tasks, knobs.users
    );
    report(&window, "tasks completed", &steps, cpu, target.sqlite);

    // Every claim completed, once: by the clients' count and by the rows.
    let completed = window.done.load(Ordering::Relaxed);
    let distinct = claimed.iter().collect::<HashSet<_>>().len();
    let mut by_status = Vec::new();
    let (mut done_rows, mut held_rows, mut once) = (0, 0, true);
    let counts =
        "SELECT status, count(*), min(attempts), max(attempts) FROM ai_tasks GROUP BY status";
    for row in rows(db, counts).await? {
        let status: String = row.try_get_by_index(0)?;
        let count: i64 = row.try_get_by_index(1)?;
        let least: i32 = row.try_get_by_index(2)?;
        let most: i32 = row.try_get_by_index(3)?;
        by_status.push(format!("{status} {count} (attempts {least}-{most})"));
        match status.as_str() {
            "completed" => {
                done_rows = count;
                once &= least == 1 && most == 1;
            }
            "pending" => once &= most == 0,
            _ => held_rows += count,
        }
    }
    let ok = claimed.len() as u64 == completed
        && distinct == claimed.len()
        && done_rows as u64 == completed
        && held_rows == 0
        && once;
    println!(
        "| check: claimed (distinct) / completed by the clients / completed rows | {} ({distinct}) / {completed} / {done_rows}: {} |",
        claimed.len(),
        if ok {
            "every claimed task completed exactly once"
        } else {
            "MISMATCH"
        }
    );
    println!("| rows by status | {} |", by_status.join("; "));
    ensure!(ok, "the queue check failed");
    Ok(())
}

async fn spends(
    knobs: &Knobs,
    user: &Client,
    db: &DatabaseConnection,
    target: &Target,
) -> anyhow::Result<()> {
    let (window, results, cpu) = drive(knobs, target, knobs.spenders, |window, _| {
        tokio::spawn(spender(user.clone(), window))
    })
    .await?;
    let latencies: Vec<u32> = results.into_iter().flat_map(|[l]| l).collect();
    println!("| spends: {} clients, one account | |", knobs.spenders);
    report(
        &window,
        "spends",
        &[("spend", latencies)],
        cpu,
        target.sqlite,
    );

    // The books: balance = sum of the ledger = grant + sign-up bonus - spends.
    let spent = window.done.load(Ordering::Relaxed) as i64;
    let books = format!(
        "SELECT CAST(a.balance AS BIGINT), \
           (SELECT CAST(sum(t.amount) AS BIGINT) FROM credit_transactions t WHERE t.credit_account_id = a.id), \
           (SELECT count(*) FROM credit_transactions t WHERE t.credit_account_id = a.id AND t.kind = 'usage'), \
           (SELECT CAST(sum(t.amount) AS BIGINT) FROM credit_transactions t \
              WHERE t.credit_account_id = a.id AND t.kind <> 'usage') \
         FROM credit_accounts a WHERE a.user_id = (SELECT id FROM users WHERE email = '{SPENDER}')"
    );
    let row = rows(db, &books)
        .await?
        .into_iter()
        .next()
        .context("no account")?;
    let balance: i64 = row.try_get_by_index(0)?;
    let ledger: i64 = row.try_get_by_index(1)?;
    let usage: i64 = row.try_get_by_index(2)?;
    let granted: i64 = row.try_get_by_index(3)?;
    let ok = balance == ledger && usage == spent && balance == granted - spent;
    println!(
        "| check: balance / sum of ledger / spends by the clients / usage rows | {balance} / {ledger} / {spent} / {usage}: {} |",
        if ok { "the books balance" } else { "MISMATCH" }
    );
    ensure!(ok, "the credits check failed");
    Ok(())
}

async fn run(binary: &Path, url: &str, knobs: &Knobs) -> anyhow::Result<()> {
    let db = api::db::connect_for_migrations(url).await?;
    Migrator::up(&db, None).await?;
    db.close().await?;
    let db = api::db::connect(url).await?;
    let seeding = Instant::now();
    seed(&db, knobs).await?;
    eprintln!("seeded in {:.1} s", seeding.elapsed().as_secs_f64());
    let spender = rows(
        &db,
        &format!("SELECT id FROM users WHERE email = '{SPENDER}'"),
    )
    .await?
    .into_iter()
    .next()
    .context("no spender")?
    .try_get_by_index::<Uuid>(0)?;

    // Capacity, not the per-principal cost throttle (bench/throttle measures that).
    let env = [("STRATIX_THROTTLE", "false".to_owned())];
    let (mut server, addr) = serve(binary, url, &env).await?;
    let sqlite = db.get_database_backend() == sea_orm::DbBackend::Sqlite;
    let target = Target {
        server: server.id().context("server pid")?,
        postmaster: if sqlite { None } else { postmaster(&db).await },
        sqlite,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(knobs.workers.max(knobs.spenders))
        .build()?;
    let client = |token: String| Client {
        http: http.clone(),
        url: format!("http://{addr}/graphql"),
        authorization: format!("Bearer {token}"),
    };
    let service = client(token("service_role", "queue-bench")?);
    let user = client(token("authenticated", &spender.to_string())?);
    println!("| measure | value |");
    println!("|---|---|");
    let result = async {
        if knobs.workload != "spends" {
            queue(knobs, &service, &db, &target).await?;
        }
        if knobs.workload != "queue" {
            spends(knobs, &user, &db, &target).await?;
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
        workers: setting("WORKERS", 8),
        tasks: setting("TASKS", 10_000),
        users: setting("USERS", 100),
        spenders: setting("SPENDERS", 8),
        seconds: setting("SECONDS", 20),
        warmup: setting("WARMUP", 3),
    };
    let binary = stratix_binary("queue")?;
    on_throwaway_database(
        "queue",
        |url| async move { run(&binary, &url, &knobs).await },
    )
    .await
}
