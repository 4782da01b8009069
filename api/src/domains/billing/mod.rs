//! Billing (seeds 001 and 002): each user's credit account and its append-only ledger.
//! Tables: `credit_accounts` (one per user, made with 100 free credits when the user is
//! made), `credit_transactions` (the ledger; workflow only) and `payments` (one per checkout
//! order, moved through its lifecycle by the provider). Users spend their own credits and
//! open payments; `service_role` grants credits and moves payments.

pub mod credits;
pub mod payments;
