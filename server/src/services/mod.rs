//! The lesson's network services: the TCP timestamp echo, the UDP echo and the banner.

pub mod banner;
pub mod tcp_echo;
pub mod udp_echo;
