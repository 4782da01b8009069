//! Accounts (seeds 001 and 002): what every workflow leaves behind for its user. Tables
//! written here: `activity_logs` (one row per state change a workflow makes, in the same
//! transaction).

pub mod activity;
