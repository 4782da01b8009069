//! The seeds' business operations (workflows), one domain a folder: plain async functions
//! over the store that know nothing of GraphQL. Each takes a [`WriteCtx`] (who asks,
//! which rows they may write, the request's transaction and outbox) and an input already
//! parsed into checked types, and returns what it changed; the schema registers each with
//! one declaration (`graphql/mutations/workflows.rs`).
//!
//! - [`accounts`]: the activity log every workflow writes.
//! - [`billing`]: the credits ledger (seeds 001, 002).
//! - [`studio`]: the AI task queue (seed 002).

pub mod accounts;
pub mod billing;
pub mod studio;

use crate::auth::Principal;
use crate::db::RequestDb;
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
}

/// A domain's rules for the values clients give a table's generated writes, if it has any.
pub fn rule(table: &str) -> Option<Rule> {
    match table {
        "profiles" => Some(accounts::profiles::rule),
        _ => None,
    }
}
