//! The studio domain: a user's AI clones and the tasks they run (seed 002).
//!
//! Owns `ai_clones` (configured AI models) and `ai_tasks` (work given to a clone, with its
//! input, output, status and priority). Every row is owned by a user, and the database
//! refuses a task whose owner differs from its clone's.

pub mod ai_clones;
pub mod ai_tasks;
