//! Accounts (seeds 001 and 002): what workflows leave behind for their user. Tables
//! written here: `activity_logs` (one row per state change a workflow makes, in the same
//! transaction), `notifications` (where the user's preferences allow; marked read by the
//! user) and `usage_metrics` (daily counters, incremented atomically); the rules of
//! `profiles` values, which the generated `profileUpdate` applies.

pub mod activity;
pub mod notifications;
pub mod profiles;
pub mod usage;
