//! Operations on the database itself: schema validation (`stratix check`).

pub mod check;
