//! socklab's page: one screen that puts the lesson's two client styles side by side.
//!
//! # Layout
//! * [`app`] — the root component: header, the two panels, the teaching strip; owns the
//!   connections (through the services) and the language.
//! * [`components`] — one file per part of the screen: [`components::bs_panel`] (this browser,
//!   via the WebSocket bridge), [`components::cs_panel`] (raw TCP/UDP sessions the server sees),
//!   [`components::teaching`] (layers, bytes on the wire, TCP vs UDP, IPv4/IPv6), and small
//!   shared pieces ([`components::widgets`]).
//! * [`state`] — pure reducers: [`state::bridge`] (the B/S log, round-trip times, close codes) and
//!   [`state::monitor`] (sessions from `/api/events`). No I/O in here, so they are easy to test.
//! * [`services`] — the I/O: a small WebSocket wrapper ([`services::socket`]), the bridge
//!   connection with reconnect and backoff ([`services::bridge`]), the monitor feed
//!   ([`services::monitor`]), `/api/info` ([`services::api`]) and JSON to and from the
//!   protocol's types by the browser's `JSON.parse`/`JSON.stringify` ([`services::json`]).
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
