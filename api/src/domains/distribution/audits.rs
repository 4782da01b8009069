//! Data access audits (`data_access_audits`): who read a message's full body with PII in
//! it, and who changed a customer, when and why.
//!
//! Audits are noted on the request path into a bounded queue in memory ([`AuditLog`]) and
//! written by a task of `stratix serve` in batches, as `service_role`: an audit never
//! fails or slows a request. A full queue drops new audits and counts them
//! (`stratix_audits_dropped_total`); what is queued when the process dies is lost (at
//! most one period's). Audits older than the distributor's `settings.audit_retention_days`
//! ([`DEFAULT_RETENTION_DAYS`] when unset) are deleted by a daily job.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::ServiceWork;
use crate::error::{ApiError, ApiResult};
use crate::realtime::{Op, Write};

/// Tables whose every change is audited.
pub const AUDITED_CHANGES: &[&str] = &["customers"];

/// The most audits waiting in memory.
pub const CAPACITY: usize = 100_000;

/// The most rows one statement inserts.
const BATCH: usize = 500;

/// How often queued audits are written.
pub const WRITE_EVERY: Duration = Duration::from_secs(1);

/// How long audits are kept where the distributor does not say.
pub const DEFAULT_RETENTION_DAYS: i64 = 365;

/// The `settings` key of a distributor's audit retention, in days (1 to 3650).
pub const RETENTION_SETTING: &str = "audit_retention_days";

/// What was done to the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Read in full.
    Read,
    /// Made.
    Create,
    /// Changed.
    Update,
    /// Deleted.
    Delete,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
        }
    }
}

/// One audited access.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Audit {
    /// Whose record.
    pub distributor: Uuid,
    /// Who (`None`: the service or a channel provider).
    pub user: Option<Uuid>,
    /// What.
    pub action: Action,
    /// Which table.
    pub table: &'static str,
    /// Which row.
    pub record: Uuid,
    /// Why: the operation or workflow that did it.
    pub reason: String,
    /// When.
    pub at: chrono::DateTime<Utc>,
}

/// The queue of audits waiting to be written (shared by every request of the process).
#[derive(Clone, Debug, Default)]
pub struct AuditLog(Arc<Mutex<VecDeque<Audit>>>);

impl AuditLog {
    /// Queues `audit`; when the queue is full it is dropped and counted.
    pub fn note(&self, audit: Audit) {
        let kept = self.0.lock().is_ok_and(|mut queue| {
            let room = queue.len() < CAPACITY;
            if room {
                queue.push_back(audit);
            }
            room
        });
        if !kept {
            crate::telemetry::metrics::audits_dropped(1);
        }
    }

    /// Queues the audits of a request's committed writes by `principal`: every change of
    /// an audited table.
    pub fn changes(&self, principal: &Principal, writes: &[Write], reason: &str) {
        for write in writes {
            let (true, Some(distributor)) = (AUDITED_CHANGES.contains(&write.table), write.owner)
            else {
                continue;
            };
            self.note(Audit {
                distributor,
                user: principal.user_id(),
                action: match write.op {
                    Op::Insert => Action::Create,
                    Op::Update => Action::Update,
                    Op::Delete => Action::Delete,
                },
                table: write.table,
                record: write.id,
                reason: reason.to_owned(),
                at: Utc::now(),
            });
        }
    }

    /// How many audits wait to be written.
    pub fn pending(&self) -> usize {
        self.0.lock().map(|queue| queue.len()).unwrap_or_default()
    }

    /// Writes every queued audit, in one transaction; on failure they go back to the
    /// front of the queue. Returns how many were written.
    pub async fn flush(&self, db: &DatabaseConnection) -> ApiResult<usize> {
        let taken: Vec<Audit> = self
            .0
            .lock()
            .map(|mut queue| queue.drain(..).collect())
            .unwrap_or_default();
        if taken.is_empty() {
            return Ok(0);
        }
        let written = write(db, &taken).await;
        if written.is_err()
            && let Ok(mut queue) = self.0.lock()
        {
            for audit in taken.iter().rev() {
                queue.push_front(audit.clone());
            }
            queue.truncate(CAPACITY);
        }
        written.map(|()| taken.len())
    }
}

async fn write(db: &DatabaseConnection, audits: &[Audit]) -> ApiResult<()> {
    let work = ServiceWork::begin(db).await?;
    let ctx = work.ctx();
    for batch in audits.chunks(BATCH) {
        let mut insert = Query::insert();
        insert.into_table("data_access_audits").columns([
            "id",
            "user_id",
            "action",
            "table_name",
            "record_id",
            "details",
            "created_at",
            "distributor_id",
        ]);
        for audit in batch {
            insert
                .values([
                    Expr::val(Uuid::new_v4()),
                    Expr::val(audit.user),
                    Expr::val(audit.action.as_str()),
                    Expr::val(audit.table),
                    Expr::val(audit.record),
                    Expr::val(json!({ "reason": audit.reason })),
                    Expr::val(audit.at),
                    Expr::val(audit.distributor),
                ])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        ctx.db.execute(&insert).await?;
    }
    work.finish(true).await?;
    Ok(())
}

/// The audit writer, a task of `stratix serve` (every instance writes its own queue).
pub async fn write_audits(log: AuditLog, db: DatabaseConnection) {
    let mut ticks = tokio::time::interval(WRITE_EVERY);
    loop {
        ticks.tick().await;
        if let Err(error) = log.flush(&db).await {
            tracing::warn!(%error, "writing data access audits failed");
        }
    }
}

/// A distributor's audit retention from its `settings`, checked: whole days, 1 to 3650.
pub fn retention_days(settings: &serde_json::Value) -> Result<i64, String> {
    match settings.get(RETENTION_SETTING) {
        None | Some(serde_json::Value::Null) => Ok(DEFAULT_RETENTION_DAYS),
        Some(days) => days
            .as_i64()
            .filter(|d| (1..=3650).contains(d))
            .ok_or_else(|| {
                format!("`{RETENTION_SETTING}` must be a whole number of days, 1 to 3650")
            }),
    }
}

/// Deletes the audits each distributor no longer keeps; returns how many.
pub async fn apply_retention(db: &DatabaseConnection) -> ApiResult<u64> {
    let work = ServiceWork::begin(db).await?;
    let ctx = work.ctx();
    let mut select = Query::select();
    select.from("distributors").columns(["id", "settings"]);
    let mut by_days: BTreeMap<i64, Vec<Uuid>> = BTreeMap::new();
    for row in ctx.db.query_all(&select).await? {
        let id: Uuid = row.try_get_by_index(0)?;
        let settings: serde_json::Value = row.try_get_by_index(1)?;
        let days = retention_days(&settings).unwrap_or(DEFAULT_RETENTION_DAYS);
        by_days.entry(days).or_default().push(id);
    }
    let mut deleted = 0;
    for (days, distributors) in by_days {
        for some in distributors.chunks(BATCH) {
            let mut delete = Query::delete();
            delete
                .from_table("data_access_audits")
                .and_where(Expr::col("distributor_id").is_in(some.iter().copied()))
                .and_where(Expr::col("created_at").lt(Utc::now() - chrono::Duration::days(days)));
            deleted += ctx.db.execute(&delete).await?.rows_affected();
        }
    }
    work.finish(true).await?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_is_checked() {
        assert_eq!(retention_days(&json!({})), Ok(DEFAULT_RETENTION_DAYS));
        assert_eq!(
            retention_days(&json!({ "audit_retention_days": 30 })),
            Ok(30)
        );
        for bad in [json!(0), json!(3651), json!("30"), json!(1.5)] {
            assert!(retention_days(&json!({ "audit_retention_days": bad })).is_err());
        }
    }
}
