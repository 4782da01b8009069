//! The distribution domain: seed 003's AI order-management platform for distributors.
//!
//! Owns `distributors` (the tenant root) and the tables every distributor's data lives in:
//! its members and invitations (`user_profiles`, `user_invitations`), customers and their
//! conversations (`customers`, `customer_labels`, `conversations`, `messages`), the AI that
//! reads those messages (`ai_responses`, `ai_usage_metrics`, `pii_detections`), the
//! catalogue and the orders taken from it (`product_categories`, `catalog_products`,
//! `orders`, `order_products`), integrations (`webhook_endpoints`, `webhook_deliveries`,
//! `external_integrations`) and the compliance trail (`data_access_audits`). Every row
//! carries `distributor_id`; a user reaches a distributor through their `user_profiles`
//! row, and sees only that distributor's rows. Seed 003 names these tables without
//! columns, so the columns are designed (docs/schema/distribution.md).

pub mod ai_responses;
pub mod ai_usage_metrics;
pub mod catalog_products;
pub mod conversations;
pub mod customer_labels;
pub mod customers;
pub mod data_access_audits;
pub mod distributors;
pub mod external_integrations;
pub mod messages;
pub mod order_products;
pub mod orders;
pub mod pii_detections;
pub mod product_categories;
pub mod user_invitations;
pub mod user_profiles;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
