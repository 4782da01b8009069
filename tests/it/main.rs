//! Stratix's integration tests: one binary, every test on SQLite and on PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly on unexpected errors")]

mod auth;
mod backup;
mod common;
mod content;
mod crawling;
mod credits;
mod experiments;
mod graphql;
mod idempotency;
mod isolation;
mod journeys;
mod notifications;
mod operations;
mod payments;
mod persisted;
mod plans;
mod realtime;
mod schema;
mod shopify_webhooks;
mod tasks;
mod usage;
mod writes;
