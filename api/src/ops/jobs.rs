//! Background jobs of `stratix serve`: small loops that each run one pass every so often.
//! On PostgreSQL each pass first takes the job's advisory lock (for the pass's length),
//! so several instances sharing a database never run the same job at once: the others
//! skip that turn.

use std::time::Duration;

use futures_util::future::BoxFuture;
use sea_orm::sea_query::{Func, Query};
use sea_orm::{ConnectionTrait as _, DbBackend, TransactionTrait as _};
use tokio::task::JoinHandle;

use crate::state::AppState;
use crate::telemetry::metrics;

/// How often `events` partitions and retention, and audit retention, are seen to.
pub const PARTITIONS_EVERY: Duration = Duration::from_secs(24 * 3600);

type Pass = Box<dyn Fn(AppState) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A background job.
struct Job {
    /// Its name: in logs, metrics, and its advisory lock's key.
    name: &'static str,
    every: Duration,
    pass: Pass,
}

/// The running jobs.
pub struct Jobs {
    tasks: Vec<JoinHandle<()>>,
}

impl Jobs {
    /// Stops every job (a pass in progress is abandoned; its transaction rolls back).
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts the jobs: the task lease sweep, the experiment results refresh, the expired rows
/// sweep, audit retention, and `events` upkeep (partitions, and each shop's retention, with
/// `default_retention_days` where a shop's settings do not say).
pub fn start(state: &AppState, default_retention_days: u32) -> Jobs {
    let jobs = [
        Job {
            name: "lease_sweep",
            every: crate::domains::studio::SWEEP_EVERY,
            pass: Box::new(|state: AppState| {
                Box::pin(async move {
                    crate::domains::studio::sweep_leases(&state.db, &state.realtime).await?;
                    Ok(())
                })
            }),
        },
        Job {
            name: "results_refresh",
            every: crate::domains::experiments::REFRESH_EVERY,
            pass: Box::new(|state: AppState| {
                Box::pin(async move {
                    crate::domains::experiments::refresh_results(&state.db, &state.realtime)
                        .await?;
                    Ok(())
                })
            }),
        },
        Job {
            name: "expired_rows",
            every: super::expiry::SWEEP_EVERY,
            pass: Box::new(|state: AppState| {
                Box::pin(async move {
                    super::expiry::sweep(&state.db).await?;
                    Ok(())
                })
            }),
        },
        Job {
            name: "audit_retention",
            every: PARTITIONS_EVERY,
            pass: Box::new(|state: AppState| {
                Box::pin(async move {
                    let deleted =
                        crate::domains::distribution::audits::apply_retention(&state.db).await?;
                    if deleted > 0 {
                        tracing::info!(deleted, "data access audits past retention deleted");
                    }
                    Ok(())
                })
            }),
        },
        Job {
            name: "event_partitions",
            every: PARTITIONS_EVERY,
            pass: Box::new(move |state: AppState| {
                Box::pin(async move {
                    let (upkeep, writes) =
                        super::partitions::upkeep(&state.db, default_retention_days).await?;
                    state.realtime.publish(writes);
                    if upkeep != super::partitions::Upkeep::default() {
                        tracing::info!(?upkeep, "events upkeep: {upkeep}");
                    }
                    Ok(())
                })
            }),
        },
    ];
    let tasks = jobs
        .into_iter()
        .map(|job| tokio::spawn(run(state.clone(), job)))
        .collect();
    Jobs { tasks }
}

async fn run(state: AppState, job: Job) {
    let mut ticks = tokio::time::interval(job.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let outcome = match run_once(&state, &job).await {
            Ok(true) => "ok",
            Ok(false) => "skipped",
            Err(error) => {
                tracing::warn!(
                    job = job.name,
                    error = format!("{error:#}"),
                    "background job failed"
                );
                "error"
            }
        };
        metrics::job_run(job.name, outcome);
    }
}

/// One pass of `job`, under its advisory lock on PostgreSQL; `false` when another
/// instance holds the lock.
async fn run_once(state: &AppState, job: &Job) -> anyhow::Result<bool> {
    if state.db.get_database_backend() != DbBackend::Postgres {
        (job.pass)(state.clone()).await?;
        return Ok(true);
    }
    // A transaction-level lock: released when the transaction ends, however it ends.
    let lock = state.db.begin().await?;
    let mut select = Query::select();
    select.expr(
        Func::cust("pg_try_advisory_xact_lock")
            .arg(Func::cust("hashtext").arg(format!("stratix_job:{}", job.name))),
    );
    let locked: bool = match lock.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => false,
    };
    if !locked {
        return Ok(false);
    }
    let ran = (job.pass)(state.clone()).await;
    lock.commit().await?;
    ran.map(|()| true)
}
