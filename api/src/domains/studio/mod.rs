//! Studio (seed 002): AI clones and the tasks they run. Tables: `ai_clones` and `ai_tasks`
//! (generated writes for what users set, with [`clones::rule`] on `config`; the queue's states and leases move only through
//! [`tasks`]). Users create and read their tasks; workers (`service_role`, or an API key
//! with the `WORKER` scope on its user's tasks) claim and finish them.

pub mod clones;
pub mod tasks;

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::error::ApiResult;
use crate::realtime::Broker;

/// How often expired leases are swept back into the queue.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// One pass of the lease sweeper (a background job of `stratix serve`, every
/// [`SWEEP_EVERY`]): puts expired tasks back in the queue and tells subscribers (on
/// PostgreSQL the triggers do). Returns how many it released.
pub async fn sweep_leases(db: &DatabaseConnection, broker: &Broker) -> ApiResult<usize> {
    let writes = tasks::release_expired(db).await?;
    let released = writes.len();
    if released > 0 {
        tracing::info!(tasks = released, "released {released} expired task leases");
        broker.publish(writes);
    }
    Ok(released)
}
