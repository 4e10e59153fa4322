//! The page's I/O. Components never touch sockets: they read reducer state and call these.

pub mod api;
pub mod bridge;
pub mod frame;
pub mod json;
pub mod monitor;
pub mod socket;
pub mod wt;
