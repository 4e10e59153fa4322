//! The connection bar: status badge, time connected (or the retry countdown), and
//! disconnect / reconnect.

use yew::prelude::*;

use crate::components::widgets::{Countdown, Elapsed};
use crate::i18n::Lang;
use crate::services::bridge::BridgeHandle;
use crate::state::bridge::Status;

#[derive(Properties, PartialEq)]
pub struct ConnBarProps {
    pub lang: Lang,
    pub status: Status,
    /// When the current connection opened (`performance.now()`).
    pub opened_at_ms: Option<f64>,
    pub bridge: BridgeHandle,
}

/// The status as `data-status` gives it to tests and tools.
pub fn status_key(status: &Status) -> &'static str {
    match status {
        Status::Connecting => "connecting",
        Status::Open => "open",
        Status::Closing => "closing",
        Status::Waiting { .. } => "waiting",
        Status::Closed => "closed",
    }
}

#[component]
pub fn ConnBar(props: &ConnBarProps) -> Html {
    let l = props.lang;
    let status = &props.status;
    let (badge_class, badge_text) = match status {
        Status::Connecting => ("badge wait", l.t("connecting", "连接中")),
        Status::Open => ("badge ok", l.t("open", "已连接")),
        Status::Closing => ("badge wait", l.t("closing", "关闭中")),
        Status::Waiting { .. } => ("badge bad", l.t("closed · retrying", "已断开 · 将重连")),
        Status::Closed => ("badge bad", l.t("closed", "已断开")),
    };
    let disconnect = {
        let bridge = props.bridge.clone();
        Callback::from(move |_: MouseEvent| bridge.disconnect())
    };
    let reconnect = {
        let bridge = props.bridge.clone();
        Callback::from(move |_: MouseEvent| bridge.reconnect_now())
    };
    let timer = match (status, props.opened_at_ms) {
        (Status::Open, Some(t)) => html! {
            <span class="muted small">{ l.t("connected for ", "已连接 ") }<Elapsed since_ms={t} /></span>
        },
        (Status::Waiting { retry_at_ms, .. }, _) => html! {
            <span class="muted small">{ l.t("retry in ", "重连倒计时 ") }<Countdown since_ms={*retry_at_ms} /></span>
        },
        _ => html! {},
    };
    html! {
        <div class="conn-bar">
            <span class={badge_class} id="bs-status" data-status={status_key(status)}>
                <span class="dot" aria-hidden="true"></span>{ badge_text }
            </span>
            <code class="url" title={l.t("WebSocket URL", "WebSocket 地址")}>{ "/ws" }</code>
            { timer }
            <span class="spacer"></span>
            if matches!(status, Status::Open | Status::Connecting) {
                <button class="btn ghost small" id="bs-disconnect" onclick={disconnect}>
                    { l.t("Disconnect", "断开") }
                </button>
            } else {
                <button class="btn small" id="bs-reconnect" onclick={reconnect}
                    disabled={*status == Status::Closing}>
                    { l.t("Reconnect now", "立即重连") }
                </button>
            }
        </div>
    }
}
