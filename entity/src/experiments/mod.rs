//! The experiments domain (seed 004): a shop's recommendations and the patches applied from
//! them, and its A/B experiments with sticky visitor assignments and aggregated results.
//!
//! Every table is owned by a shop (`shop_id`); a shop principal sees only its own rows,
//! `service_role` sees all.

pub mod assignments;
#[expect(
    clippy::module_inception,
    reason = "entity modules are named exactly as their tables"
)]
pub mod experiments;
pub mod patches;
pub mod recommendations;
pub mod results_aggregates;
