//! The B/S panel: this browser's own session through the WebSocket bridge.
//!
//! Made of parts that each redraw only when what they show changes: the connection bar
//! ([`conn_bar`]), the upstream and close notes ([`notes`]), the message log ([`log`]), the
//! figures and the log's filter ([`stats`]), and the composer ([`composer`], with its
//! [`hint`] and ↑/↓ [`history`]). A burst of replies reaches it as one state change per
//! animation frame (see `services::frame`).

mod composer;
mod conn_bar;
mod hint;
mod history;
mod log;
mod notes;
mod stats;

use yew::prelude::*;

use self::composer::Composer;
use self::conn_bar::ConnBar;
use self::log::MessageLog;
pub use self::notes::Upstream;
use self::notes::{CloseBox, UpstreamNote};
use self::stats::{LogTools, Stats};
use crate::components::download::{self, Download};
use crate::components::packets::{Ladder, PacketsView};
use crate::i18n::Lang;
use crate::services::bridge::BridgeHandle;
use crate::state::bridge::{BridgeAction, BridgeState, MAX_LOG, Status};
use crate::state::transcript;
use crate::util;

#[derive(Properties, PartialEq)]
pub struct BsPanelProps {
    pub lang: Lang,
    pub state: UseReducerHandle<BridgeState>,
    pub bridge: BridgeHandle,
    /// This page's upstream TCP session, once the monitor has shown it.
    pub upstream: Option<Upstream>,
    /// The largest message the server accepts, once known.
    pub max_message: Option<usize>,
    /// Whether the server captures packets, once known.
    pub capture: Option<bool>,
    /// This page's own sessions for the Packets view: its WebSocket, then the bridge's TCP hop.
    pub ladders: Vec<Ladder>,
}

#[component]
pub fn BsPanel(props: &BsPanelProps) -> Html {
    let l = props.lang;
    let state = &props.state;
    // The log filter, as typed (matching is case-insensitive).
    let filter = use_state(AttrValue::default);
    let onfilter = use_callback(filter.setter(), |text: String, setter| {
        setter.set(text.into())
    });
    let onclear = use_callback(state.dispatcher(), |(), dispatch| {
        dispatch.dispatch(BridgeAction::ClearLog)
    });
    let is_open = state.status == Status::Open;
    let never_connected = state.connections == 0;
    let unreachable =
        never_connected && !is_open && state.last_close.as_ref().is_some_and(|c| c.code == 1006);
    let query = AttrValue::from(util::lowercase(filter.trim()));
    let packets_open = use_state(|| false);
    let ontoggle = use_callback(packets_open.clone(), |_: AttrValue, open| open.set(!**open));
    let build = use_callback(state.clone(), |(), state| {
        let target = util::ws_url("ws");
        transcript::bs_transcript(
            state,
            &target,
            &download::iso_now(),
            download::iso_of_now_ms,
        )
    });
    let note = match l {
        Lang::En => {
            format!("times and round trips from this browser; the log's newest {MAX_LOG} rows")
        }
        Lang::Zh => format!("时间与往返时间取自本浏览器；仅含日志最新的 {MAX_LOG} 行"),
    };

    html! {
        <section class="panel bs" aria-labelledby="bs-title">
            <div class="panel-head">
                <div>
                    <h2 id="bs-title"><span class="tag bs">{ "B/S" }</span>{ l.t("This browser", "本浏览器") }</h2>
                    <p class="sub">{ l.t(
                        "page → WebSocket → bridge → TCP → echo",
                        "页面 → WebSocket → 桥 → TCP → 回显",
                    ) }</p>
                </div>
                <div class="tabs" role="tablist" aria-label={l.t("Transport", "传输方式")}>
                    <button role="tab" class="tab active" aria-selected="true">{ "WebSocket · TCP" }</button>
                    // The datagram path has its own panel below; this tab leads there.
                    <a role="tab" class="tab" aria-selected="false" href="#udp-panel"
                        title={l.t("WebTransport datagrams: the UDP panel below", "WebTransport 数据报：见下方的 UDP 面板")}>
                        { "WebTransport · UDP ↓" }
                    </a>
                </div>
            </div>
            <ConnBar lang={l} status={state.status.clone()} opened_at_ms={state.opened_at_ms}
                bridge={props.bridge.clone()} />
            <UpstreamNote lang={l} upstream={props.upstream.clone()} {is_open} />
            if !props.ladders.is_empty() {
                <PacketsView lang={l} capture={props.capture} key_id="bs"
                    ladders={props.ladders.clone()} open={*packets_open} {ontoggle} />
            }
            // The last close stays visible while reconnecting, so its reason can be read.
            if let Some(close) = state.last_close.clone().filter(|_| !is_open) {
                <CloseBox lang={l} {close} {never_connected} />
            }
            <MessageLog lang={l} log={state.log.clone()} dropped={state.log_dropped}
                query={query} {unreachable} />
            <div class="stats" aria-live="off">
                <Stats lang={l} sent={state.sent_total} received={state.received_total}
                    rtt={state.rtt} />
                <span class="spacer"></span>
                <LogTools lang={l} log={state.log.clone()} filter={(*filter).clone()}
                    {onfilter} {onclear} />
            </div>
            <Composer lang={l} bridge={props.bridge.clone()} {is_open}
                max_message={props.max_message} />
            <Download lang={l} name="socklab-bs-ws" {note} {build} />
        </section>
    }
}
