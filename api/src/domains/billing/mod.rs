//! Billing (seeds 001 and 002): each user's credit account and its append-only ledger.
//! Tables: `credit_accounts` (one per user, made with 100 free credits when the user is
//! made), `credit_transactions` (the ledger; workflow only). Users spend their own
//! credits; `service_role` grants them.

pub mod credits;
