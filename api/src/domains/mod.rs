//! The seeds' business operations (workflows), one domain a folder: plain async functions
//! over the store that know nothing of GraphQL. Each takes a [`WriteCtx`] (who asks,
//! which rows they may write, the request's transaction and outbox) and an input already
//! parsed into checked types, and returns what it changed; the schema registers each with
//! one declaration (`graphql/mutations/workflows.rs`).
//!
//! - [`accounts`]: the activity log every workflow writes.
//! - [`billing`]: the credits ledger and payments (seeds 001, 002).
//! - [`crawling`]: crawl jobs, split into chunks that workers run (seed 001).
//! - [`distribution`]: distributors, members, roles and invitations (seed 003).
//! - [`experiments`]: experiments' lifecycle, patches and recommendations (seed 004).
//! - [`queue`]: rows noted on the request path and written off it in batches (audits,
//!   usage logs).
//! - [`shopify`]: products' versioned AI content (seed 000).
//! - [`studio`]: the AI task queue (seed 002).

pub mod accounts;
pub mod batch;
pub mod billing;
pub mod crawling;
pub mod distribution;
pub mod experiments;
pub mod queue;
pub mod shopify;
pub mod studio;

use chrono::{DateTime, Duration, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, Query};

use crate::auth::Principal;
use crate::db::RequestDb;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::store::write::Rule;
use crate::store::{Outbox, Scope};

/// What a workflow works with: one request's principal, scope, transaction and outbox.
pub struct WriteCtx<'a> {
    /// Who asks.
    pub principal: &'a Principal,
    /// The rows they read and write.
    pub scope: &'a Scope,
    /// The request's transaction: everything a workflow writes commits or rolls back
    /// together.
    pub db: &'a RequestDb,
    /// Where writes are recorded for subscribers, published after the commit.
    pub outbox: &'a Outbox,
    /// The keys secrets are encrypted under (none in background work, which stores no
    /// new secret).
    pub encryption: &'a crate::crypto::KeyRing,
    /// The deployment's switches (the defaults in background work).
    pub options: &'a crate::state::Options,
}

/// Background work of the service itself (sweeps, refreshes, metering): a transaction as
/// `service_role` over every row, with its own outbox.
pub struct ServiceWork {
    principal: Principal,
    scope: Scope,
    db: RequestDb,
    outbox: Outbox,
    encryption: crate::crypto::KeyRing,
    options: crate::state::Options,
}

impl ServiceWork {
    /// Opens the transaction on `pool`.
    pub async fn begin(pool: &sea_orm::DatabaseConnection) -> ApiResult<Self> {
        let principal = Principal::Service;
        let db = RequestDb::begin(pool, &principal.claims(), crate::db::Access::Write).await?;
        Ok(Self {
            principal,
            scope: Scope::Service,
            db,
            outbox: Outbox::default(),
            encryption: crate::crypto::KeyRing::default(),
            options: crate::state::Options::default(),
        })
    }

    /// What the domain functions take.
    pub fn ctx(&self) -> WriteCtx<'_> {
        WriteCtx {
            principal: &self.principal,
            scope: &self.scope,
            db: &self.db,
            outbox: &self.outbox,
            encryption: &self.encryption,
            options: &self.options,
        }
    }

    /// Commits when `ok` (else rolls back); returns the writes to publish (none after a
    /// rollback).
    pub async fn finish(self, ok: bool) -> ApiResult<Vec<crate::realtime::Write>> {
        self.db.finish(crate::db::End::commit_if(ok)).await?;
        Ok(if ok { self.outbox.take() } else { Vec::new() })
    }
}

/// Refuses anyone but a worker: `service_role`, or an API key with the `WORKER` scope
/// (whose scope keeps it to its own user's rows).
pub fn may_work(ctx: &WriteCtx<'_>) -> ApiResult<()> {
    if ctx.principal.may_work() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "worker operations need service_role or a WORKER API key".to_owned(),
        ))
    }
}

/// Makes the transactions that work on `key` take turns until the current one ends:
/// find-or-create steps that no unique key can guard. PostgreSQL takes a transaction-level
/// advisory lock; SQLite's writing transactions already take turns.
pub async fn serialize_on(ctx: &WriteCtx<'_>, key: &str) -> ApiResult<()> {
    if ctx.db.get_database_backend() != sea_orm::DbBackend::Postgres {
        return Ok(());
    }
    let mut select = Query::select();
    select.expr(Func::cust("pg_advisory_xact_lock").arg(Func::cust("hashtext").arg(key)));
    ctx.db.query_one(&select).await?;
    Ok(())
}

/// `INVALID_TRANSITION` on `input.id`: a `what` in state `from` cannot move as asked
/// (`to`: the state, or what was asked, like "be cancelled").
pub fn invalid_transition(what: &str, from: &str, to: &str) -> ApiError {
    ApiError::refused(
        "input.id",
        InputCode::InvalidTransition,
        format!("a {from} {what} cannot {to}"),
    )
}

/// The version after the highest of `table`'s rows matching `of` (1 for none). The
/// caller holds a lock that keeps other writers of the same sequence waiting.
pub async fn next_version(
    ctx: &WriteCtx<'_>,
    table: &'static str,
    of: Condition,
) -> ApiResult<i32> {
    let mut last = Query::select();
    last.from(table)
        .expr(Func::coalesce([Expr::col("version").max(), Expr::val(0)]))
        .cond_where(of);
    let version: i32 = match ctx.db.query_one(&last).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => 0,
    };
    Ok(version + 1)
}

/// The longest lease a worker may take at once.
pub const MAX_LEASE_SECONDS: i64 = 3600;

/// How long a lease lasts: 1 second to [`MAX_LEASE_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lease(Duration);

impl Lease {
    /// Checks `seconds`, given as input `field`.
    pub fn parse(field: &str, seconds: i64) -> ApiResult<Self> {
        if !(1..=MAX_LEASE_SECONDS).contains(&seconds) {
            return Err(ApiError::bad_input(
                field,
                format!("must be 1 to {MAX_LEASE_SECONDS} seconds"),
            ));
        }
        Ok(Self(Duration::seconds(seconds)))
    }

    /// When a lease taken now runs out.
    pub fn until(self) -> DateTime<Utc> {
        Utc::now() + self.0
    }
}

/// A domain's rules for the values clients give a table's generated writes, if it has any.
pub fn rule(table: &str) -> Option<Rule> {
    match table {
        "profiles" => Some(accounts::profiles::rule),
        "ai_clones" => Some(studio::clones::rule),
        "experiments" => Some(experiments::lifecycle::rule),
        "external_integrations" => Some(distribution::integration_secrets::rule),
        "distributors" => Some(distribution::distributors::rule),
        _ => None,
    }
}

/// What generated writes set off in their domain, in their transaction: the events a
/// workflow raises for the same change (an order made by `orderCreate` is announced to
/// the distributor's webhooks as one made from an AI response is).
pub async fn after_writes(ctx: &WriteCtx<'_>, writes: &[crate::realtime::Write]) -> ApiResult<()> {
    use crate::realtime::Op;
    for write in writes {
        if let ("orders", Op::Insert, Some(distributor)) = (write.table, write.op, write.owner) {
            distribution::orders::announce_created(ctx, distributor, write.id).await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_bounded() {
        assert!(Lease::parse("l", 0).is_err());
        assert!(Lease::parse("l", MAX_LEASE_SECONDS + 1).is_err());
        assert!(Lease::parse("l", 30).is_ok());
    }
}
