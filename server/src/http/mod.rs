//! HTTP plumbing under every route: serving connections, the Origin rule and
//! `X-Forwarded-For`, the JSON APIs, `/metrics`, a session's pcap and the page's static files. The route table is `app.rs`.

pub mod access;
pub mod api;
pub mod metrics;
pub mod pcap;
pub mod serve;
pub mod static_files;
