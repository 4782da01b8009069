//! Data access audits (`data_access_audits`): who read a message's full body with PII in
//! it, and who changed a customer, when and why.
//!
//! Audits are noted on the request path into a bounded queue in memory ([`AuditLog`], a
//! [`WriteQueue`]) and written by a task of `stratix serve` in batches, as `service_role`:
//! an audit never fails or slows a request. A full queue drops new audits and counts them
//! (`stratix_audits_dropped_total`); what is queued when the process dies is lost (at
//! most one period's). Audits older than the distributor's `settings.audit_retention_days`
//! ([`DEFAULT_RETENTION_DAYS`] when unset) are deleted by a daily job.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, InsertStatement, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::ServiceWork;
use crate::domains::queue::{Queued, WriteQueue, write_every};
use crate::error::{ApiError, ApiResult};
use crate::realtime::{Op, Write};

/// Tables whose every change is audited.
pub const AUDITED_CHANGES: &[&str] = &["customers"];

/// The most audits waiting in memory.
pub const CAPACITY: usize = 100_000;

/// The most distributors one retention statement covers.
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
pub type AuditLog = WriteQueue<Audit>;

impl Queued for Audit {
    const CAPACITY: usize = CAPACITY;
    const WHAT: &'static str = "data access audits";

    fn dropped(n: usize) {
        crate::telemetry::metrics::audits_dropped(n);
    }

    fn insert(audits: &[Self]) -> ApiResult<InsertStatement> {
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
        for audit in audits {
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
        Ok(insert)
    }
}

impl WriteQueue<Audit> {
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
}

/// The audit writer, a task of `stratix serve` (every instance writes its own queue).
pub async fn write_audits(log: AuditLog, db: DatabaseConnection) {
    write_every(log, db, WRITE_EVERY).await;
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
