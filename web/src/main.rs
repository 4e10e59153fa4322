//! socklab's page: one screen that puts the lesson's two client styles side by side.
//!
//! # Layout
//! Layers, each importing only from those below it (ARCHITECTURE.md, "The page's layers"):
//! * [`app`] — the root component: owns the page's state (two reducers and the server info),
//!   the two connections (through the services) and the language; hands each part exactly
//!   what it shows.
//! * [`components`] — one folder or file per part of the screen: [`components::bs_panel`]
//!   (this browser, via the WebSocket bridge), [`components::cs_panel`] (raw TCP/UDP sessions
//!   the server sees), [`components::udp_panel`] (datagrams over WebTransport),
//!   [`components::teaching`] (layers, bytes on the wire, TCP vs UDP, IPv4/IPv6),
//!   [`components::packets`] (captured packets as a ladder), [`components::download`]
//!   (session records) and small shared pieces ([`components::widgets`]).
//! * [`services`] — the I/O: a small WebSocket wrapper ([`services::socket`]), the bridge
//!   connection with reconnect and backoff ([`services::bridge`]), WebTransport
//!   ([`services::wt`]), the monitor feed ([`services::monitor`]), one state change per
//!   animation frame ([`services::frame`]), `/api/info` ([`services::api`]) and JSON to and
//!   from the protocol's types by the browser's `JSON.parse`/`JSON.stringify`
//!   ([`services::json`]).
//! * [`state`] — pure reducers: [`state::bridge`] (the B/S log, round-trip times, close
//!   codes), [`state::monitor`] (sessions from `/api/events`), [`state::udp`],
//!   [`state::packets`] and [`state::transcript`]. No I/O in here, so they are easy to test.
//! * [`i18n`] — Chinese and English, switchable and remembered.
//! * [`util`] — clocks, URLs, hex dumps, clipboard, local storage.

mod app;
mod components;
mod i18n;
mod services;
mod state;
mod util;

fn main() {
    yew::Renderer::<app::App>::new().render();
}
