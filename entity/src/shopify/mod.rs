//! The shopify domain: installed Shopify shops (the shop tenant root) and what each shop
//! owns: its cached catalogue and orders, content revisions, metrics, AI models, API usage,
//! cache entries and storefront events (seeds 000 and 004).
//!
//! Every table is owned by a shop (`shop_id`, or `id` on `shops`); a shop principal sees
//! only its own rows, `service_role` sees all. `ai_models` and `cache` rows with no shop are
//! global.

pub mod ai_models;
pub mod cache;
pub mod content_revisions;
pub mod events;
pub mod orders_cache;
pub mod performance_metrics;
pub mod products;
pub mod shops;
pub mod usage_logs;
