//! Stratix's integration tests: one binary, every test on SQLite and on PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod ai_budget;
mod auth;
mod backup;
mod catalog;
mod common;
mod content;
mod contention;
mod crawling;
mod credits;
mod customers;
mod distribution;
mod encryption;
mod experiments;
mod fuzz;
mod graphql;
mod idempotency;
mod isolation;
mod journeys;
mod limits;
mod messages;
mod notifications;
mod operations;
mod payments;
mod persisted;
mod plans;
mod protocols;
mod realtime;
mod schema;
mod shopify_webhooks;
mod shops;
mod tasks;
mod tokens;
mod traces;
mod usage;
mod writes;
