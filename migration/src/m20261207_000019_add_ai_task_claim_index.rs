//! The AI task queue's claim order as an index: pending tasks by priority rank, then age.
//! A claim then reads the first unlocked row of the index instead of sorting the whole
//! backlog (which made each claim cost more the longer the queue). The rank expression is
//! [`PRIORITY_RANK`], which the claim orders by verbatim so the index matches it; expired
//! leases, rarer, are found through their own index.

use sea_orm_migration::prelude::*;

use crate::ddl::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tasks waiting for a worker, written as the index's predicate (a literal, so the
/// planner matches it whatever the statement's parameters).
pub const PENDING: &str = "status = 'pending'";

/// The tasks a worker holds, likewise.
pub const HELD: &str = "status = 'in_progress'";

/// A task's priority as a number, urgent first.
pub const PRIORITY_RANK: &str = "(CASE priority WHEN 'urgent' THEN 0 WHEN 'high' THEN 1 \
                                 WHEN 'medium' THEN 2 ELSE 3 END)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql(
            manager,
            &format!(
                "CREATE INDEX idx_tasks_claim ON ai_tasks ({PRIORITY_RANK}, created_at, id) \
                 WHERE {PENDING}"
            ),
        )
        .await?;
        sql(
            manager,
            &format!("CREATE INDEX idx_tasks_leases ON ai_tasks (lease_expires_at) WHERE {HELD}"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql(manager, "DROP INDEX IF EXISTS idx_tasks_leases").await?;
        sql(manager, "DROP INDEX IF EXISTS idx_tasks_claim").await
    }
}
