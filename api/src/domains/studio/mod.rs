//! Studio (seed 002): AI clones and the tasks they run. Tables: `ai_clones` and `ai_tasks`
//! (generated writes for what users set, with [`clones::rule`] on `config`; the queue's states and leases move only through
//! [`tasks`]). Users create and read their tasks; workers (`service_role`, or an API key
//! with the `WORKER` scope on its user's tasks) claim and finish them.

pub mod clones;
pub mod tasks;

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::realtime::Broker;

/// How often expired leases are swept back into the queue.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// The lease sweeper, a task of `stratix serve`: puts expired tasks back in the queue
/// every `every`, and tells subscribers (on PostgreSQL the triggers do).
pub async fn sweep_leases(db: DatabaseConnection, broker: Broker, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        match tasks::release_expired(&db).await {
            Ok(writes) if !writes.is_empty() => {
                tracing::info!(
                    tasks = writes.len(),
                    "released {} expired task leases",
                    writes.len()
                );
                broker.publish(writes);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "sweeping task leases failed"),
        }
    }
}
