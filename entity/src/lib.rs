//! sea-orm entities: one module per table, named exactly as the table, grouped by domain.

pub mod accounts;
pub mod billing;
pub mod crawling;
pub mod distribution;
pub mod experiments;
pub mod registry;
pub mod shopify;
pub mod studio;
