//! One file per part of the screen.

pub mod bs_panel;
pub mod cs_panel;
pub mod download;
pub mod packets;
pub mod teaching;
pub mod udp_panel;
pub mod widgets;
