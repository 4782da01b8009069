//! Data access: tenant-scoped reads over any table, built with sea-query.
//!
//! Nothing here knows GraphQL. Callers describe what they want ([`ListQuery`],
//! [`AggregateQuery`]) and get rows back; every statement carries the caller's [`Scope`].
//! Batched variants take many parent ids and answer for each in one statement, with
//! per-parent limits done in SQL (`ROW_NUMBER() OVER (PARTITION BY ...)`).

mod aggregate;
mod filter;
mod order;
mod outbox;
mod read;
mod scope;
pub mod values;
pub mod violation;
pub mod write;

pub use aggregate::{
    AggregateQuery, AggregateRow, GroupKey, MAX_GROUPS, Measure, Truncate, aggregate,
};
pub use filter::{Filter, Op};
pub use order::{OrderTerm, Ordering};
pub use outbox::Outbox;
pub use read::{
    Columns, ListQuery, Page, PageRows, Parents, Row, count, count_by_parents, find_by_ids, list,
    list_by_parents,
};
pub use scope::Scope;
