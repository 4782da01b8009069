//! The accounts domain: who a user is and what belongs to them outside billing and work.
//!
//! Owns `users` (the identity root, seed 002, standing in for Supabase's `auth.users`) and
//! the per-user tables `profiles`, `api_keys`, `notifications`, `notification_preferences`,
//! `activity_logs` and `usage_metrics` (seeds 001 and 002). Every row is owned by a user;
//! a user's profile, credit account and notification preferences are made by the database
//! when the user is inserted.

pub mod activity_logs;
pub mod api_keys;
pub mod notification_preferences;
pub mod notifications;
pub mod profiles;
pub mod usage_metrics;
pub mod users;
