//! Stratix's schema, as sea-orm migrations for SQLite and PostgreSQL.
//!
//! The table migrations (one per domain) are portable DDL; what only PostgreSQL has (row-level
//! security, partitions of `events`, GIN indexes) is added behind a backend check. The
//! [`catalog`] lists every table with its owner, for the triggers, policies and checks;
//! [`secure`] holds those per-table rules, and a migration that creates a new catalog table
//! applies them with [`secure::secure_table`].

pub use sea_orm_migration::prelude::*;

pub mod catalog;
mod ddl;
pub mod introspect;
mod m20261122_000001_create_accounts;
mod m20261122_000002_create_billing;
mod m20261122_000003_create_crawling;
mod m20261122_000004_create_studio;
mod m20261122_000005_create_shopify;
mod m20261122_000006_create_experiments;
mod m20261122_000007_create_distribution;
mod m20261122_000008_create_new_user_effects;
mod m20261122_000009_create_updated_at_triggers;
mod m20261122_000010_create_row_level_security;
mod m20261122_000011_create_app_role;
mod m20261122_000012_create_change_feed;
mod m20261207_000013_create_idempotency_keys;
mod m20261207_000014_create_credit_ledger_rule;
mod m20261207_000015_add_ai_task_leases;
mod m20261207_000016_add_payment_and_reservation_states;
mod m20261207_000017_create_crawl_chunks;
mod m20261207_000018_create_webhook_receipts;
mod m20261207_000019_add_ai_task_claim_index;
mod m20261207_000030_add_distributor_memberships;
mod m20261207_000031_add_message_counters_and_pii;
mod m20261207_000032_add_order_review_states;
mod m20261207_000040_guard_change_events;
mod m20261207_000060_add_webhook_delivery_leases;
mod m20261207_000070_add_customer_last_order;
mod m20261207_000071_add_integration_keys;
mod m20261207_000080_add_event_sequence;
mod m20261207_000081_add_usage_log_costs;
mod m20261207_000082_add_event_retention_by_shop;
mod m20261207_000083_unfeed_assignments;
pub mod secure;

pub use ddl::{SQLITE_NEW_UUID, SQLITE_NOW};
pub use m20261122_000011_create_app_role::APP_ROLE;
pub use m20261122_000012_create_change_feed::{
    CHANGE_CHANNEL, CHANGE_EVENTS, MAX_RETAINED, RETENTION_MINUTES, feed_key,
};
pub use m20261207_000013_create_idempotency_keys::IDEMPOTENCY_KEYS;
pub use m20261207_000018_create_webhook_receipts::WEBHOOK_RECEIPTS;
pub use m20261207_000080_add_event_sequence::EVENT_CURSORS;
/// The AI task queue's claim order and states, as its indexes spell them.
pub mod task_queue {
    pub use crate::m20261207_000019_add_ai_task_claim_index::{HELD, PENDING, PRIORITY_RANK};
}
pub use secure::change_trigger;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_accounts::Migration),
            Box::new(m20261122_000002_create_billing::Migration),
            Box::new(m20261122_000003_create_crawling::Migration),
            Box::new(m20261122_000004_create_studio::Migration),
            Box::new(m20261122_000005_create_shopify::Migration),
            Box::new(m20261122_000006_create_experiments::Migration),
            Box::new(m20261122_000007_create_distribution::Migration),
            Box::new(m20261122_000008_create_new_user_effects::Migration),
            Box::new(m20261122_000009_create_updated_at_triggers::Migration),
            Box::new(m20261122_000010_create_row_level_security::Migration),
            Box::new(m20261122_000011_create_app_role::Migration),
            Box::new(m20261122_000012_create_change_feed::Migration),
            Box::new(m20261207_000013_create_idempotency_keys::Migration),
            Box::new(m20261207_000014_create_credit_ledger_rule::Migration),
            Box::new(m20261207_000015_add_ai_task_leases::Migration),
            Box::new(m20261207_000016_add_payment_and_reservation_states::Migration),
            Box::new(m20261207_000017_create_crawl_chunks::Migration),
            Box::new(m20261207_000018_create_webhook_receipts::Migration),
            Box::new(m20261207_000019_add_ai_task_claim_index::Migration),
            Box::new(m20261207_000030_add_distributor_memberships::Migration),
            Box::new(m20261207_000031_add_message_counters_and_pii::Migration),
            Box::new(m20261207_000032_add_order_review_states::Migration),
            Box::new(m20261207_000040_guard_change_events::Migration),
            Box::new(m20261207_000060_add_webhook_delivery_leases::Migration),
            Box::new(m20261207_000070_add_customer_last_order::Migration),
            Box::new(m20261207_000071_add_integration_keys::Migration),
            Box::new(m20261207_000080_add_event_sequence::Migration),
            Box::new(m20261207_000081_add_usage_log_costs::Migration),
            Box::new(m20261207_000082_add_event_retention_by_shop::Migration),
            Box::new(m20261207_000083_unfeed_assignments::Migration),
        ]
    }
}
