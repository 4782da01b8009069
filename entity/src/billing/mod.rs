//! The billing domain: a user's credits and what they paid.
//!
//! Owns `credit_accounts` (one per user, balance never below zero), `credit_transactions`
//! (the append-only ledger behind every balance change) and `payments` (seed 002's payment
//! records; completing one can grant credits). Every row is owned by a user; payments keep
//! their row, with a null owner, when the user is deleted.

pub mod credit_accounts;
pub mod credit_transactions;
pub mod payments;
