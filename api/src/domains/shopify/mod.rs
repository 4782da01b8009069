//! Shopify apps (seed 000): shops, their products and the AI content written for them.
//! [`shops`] installs a shop (its access token encrypted), uninstalls it and keeps its
//! settings.
//! [`content`] keeps each product's revisions numbered 1, 2, 3... with no gap and no
//! duplicate however many writers run at once, publishes one to the product, and restores
//! an old one as a new version (history is never rewritten). Callers are the shop (its
//! session token) or `service_role`. [`webhooks`] applies what Shopify's verified
//! webhooks say, once per delivery. [`events`] stores the storefront's event batches
//! (seed 004), once per event however often they are retried, numbered in arrival order
//! by [`sequence`]. [`usage`] logs each API request a shop makes (`usage_logs`), off the
//! request path. [`metrics`] records products' performance metrics in batches.

pub mod content;
pub mod events;
pub mod metrics;
pub mod sequence;
pub mod shops;
pub mod usage;
pub mod webhooks;
