//! B/S over UDP: this browser's WebTransport session. One datagram, or a burst of N sent at
//! once over WebTransport datagrams (UDP: some may be lost, some may come back out of order)
//! beside the same burst over the WebSocket bridge (TCP: all back, in order), with each
//! reply's round-trip time ([`burst`]), and the path and bytes of one datagram ([`wire`]).
//! The connections live in [`links`]; the state is `state::udp`.

mod burst;
mod links;
mod wire;

use yew::prelude::*;

use self::burst::BurstView;
use self::links::use_links;
use self::wire::Wire;
use crate::components::widgets::fmt_ms;
use crate::i18n::Lang;
use crate::services::wt::supported;
use crate::state::udp::{Status, Udp};
use crate::util;

/// The largest burst the page sends.
const MAX_BURST: usize = 500;

#[derive(Properties, PartialEq)]
pub struct UdpPanelProps {
    pub lang: Lang,
}

fn head(l: Lang) -> Html {
    html! {
        <div class="panel-head">
            <div>
                <h2 id="udp-title"><span class="tag bs">{ "B/S" }</span>{ l.t("This browser over UDP", "本浏览器 · UDP") }</h2>
                <p class="sub">{ l.t(
                    "page → WebTransport datagram → QUIC → UDP → gateway → UDP → echo",
                    "页面 → WebTransport 数据报 → QUIC → UDP → 网关 → UDP → 回显",
                ) }</p>
            </div>
        </div>
    }
}

fn drop_note(l: Lang, drop_percent: Option<f64>) -> String {
    match drop_percent {
        Some(p) if p > 0.0 => format!(
            "{} {}% {}",
            l.t("The UDP echo drops", "UDP 回显服务故意丢弃"),
            util::number_text(p),
            l.t("of datagrams on purpose (--udp-drop).", "的数据报（--udp-drop）。")
        ),
        _ => l
            .t(
                "Loopback almost never loses a datagram; start the server with --udp-drop 30 to see loss.",
                "回环地址几乎不会丢包；用 --udp-drop 30 启动服务器就能看到丢包。",
            )
            .to_owned(),
    }
}

fn last_reply(l: Lang, last: &Option<Result<(String, f64), String>>) -> Html {
    match last {
        Some(Ok((text, rtt))) => html! {
            <p class="entry received" id="udp-last"><span class="msg">{ text.clone() }</span>
                <span class="rtt">{ format!(" · {}", fmt_ms(*rtt)) }</span></p>
        },
        Some(Err(text)) => html! {
            <p class="entry warn" id="udp-last-lost">{ format!("{} {text}", l.t("No reply (lost?):", "没有回复（丢了？）：")) }</p>
        },
        None => html! {},
    }
}

#[component]
pub fn UdpPanel(props: &UdpPanelProps) -> Html {
    let l = props.lang;
    let has_wt = *use_memo((), |_| supported());
    let state = use_reducer(Udp::default);
    let links = use_links(state.dispatcher());
    let burst_size = use_state(|| 20usize);
    {
        let links = links.clone();
        use_effect_with((), move |_| {
            if has_wt {
                links.connect();
            }
        });
    }
    if !has_wt {
        return unsupported(l);
    }

    let reconnect = {
        let links = links.clone();
        Callback::from(move |_: MouseEvent| links.connect())
    };
    let send_one = {
        let links = links.clone();
        Callback::from(move |_: MouseEvent| links.send_one())
    };
    let send_burst = {
        let (burst, n) = (state.burst + 1, (*burst_size).clamp(1, MAX_BURST));
        Callback::from(move |_: MouseEvent| links.send_burst(burst, n))
    };
    let is_open = state.status == Status::Open;

    html! {
        <section class="panel udp" id="udp-panel" aria-labelledby="udp-title">
            { head(l) }
            { conn_bar(l, &state.status, reconnect) }
            { composer(l, is_open, &burst_size, send_one, send_burst) }
            { last_reply(l, &state.last) }
            <p class="hint" id="udp-drop-note">{ drop_note(l, state.drop_percent) }</p>
            if let Some(run) = state.udp.clone() {
                <BurstView lang={l} id="udp" title="WebTransport · UDP" {run} />
            }
            if let Some(run) = state.ws.clone() {
                <BurstView lang={l} id="ws" title="WebSocket · TCP" {run} />
            }
            <Wire lang={l} />
        </section>
    }
}

/// The panel in a browser without WebTransport: why this page cannot send a datagram.
fn unsupported(l: Lang) -> Html {
    html! {
        <section class="panel udp" id="udp-panel" aria-labelledby="udp-title">
            { head(l) }
            <p class="warn" id="udp-unsupported">{ l.t(
                "This browser has no WebTransport, so this page cannot send UDP datagrams. A page has no raw UDP socket; WebTransport (HTTP/3 over QUIC over UDP) is its only datagram path. Try a recent Chrome, Edge or Firefox.",
                "这个浏览器不支持 WebTransport，所以本页面无法发送 UDP 数据报。网页没有原始 UDP 套接字；WebTransport（基于 QUIC、再基于 UDP 的 HTTP/3）是它唯一的数据报通道。请换用较新的 Chrome、Edge 或 Firefox。",
            ) }</p>
        </section>
    }
}

/// The WebTransport session's status pill, and a Reconnect button while it is not open.
fn conn_bar(l: Lang, status: &Status, reconnect: Callback<MouseEvent>) -> Html {
    let (status_key, pill_class, status_text) = match status {
        Status::Connecting => (
            "connecting",
            "pill wait",
            l.t("connecting…", "连接中…").to_owned(),
        ),
        Status::Open => ("open", "pill ok", l.t("open", "已连接").to_owned()),
        Status::Closed(why) => (
            "closed",
            "pill bad",
            format!("{} {why}", l.t("closed:", "已关闭：")),
        ),
    };
    html! {
        <div class="conn-bar">
            <span class={pill_class} id="udp-status" data-status={status_key} role="status">
                <span class="dot" aria-hidden="true"></span>{ status_text }
            </span>
            if *status != Status::Open {
                <button class="btn ghost" id="udp-reconnect" onclick={reconnect}>{ l.t("Reconnect", "重新连接") }</button>
            }
        </div>
    }
}

/// The send buttons and the burst's size, which the size box sets (1 to [`MAX_BURST`]).
fn composer(
    l: Lang,
    is_open: bool,
    burst_size: &UseStateHandle<usize>,
    send_one: Callback<MouseEvent>,
    send_burst: Callback<MouseEvent>,
) -> Html {
    let on_size = {
        let burst_size = burst_size.clone();
        Callback::from(move |e: InputEvent| {
            let value = e
                .target()
                .and_then(|t| js_sys::Reflect::get(&t, &"value".into()).ok())
                .and_then(|v| v.as_string());
            if let Some(n) = value.and_then(|v| v.trim().parse::<usize>().ok()) {
                burst_size.set(n.clamp(1, MAX_BURST));
            }
        })
    };
    html! {
        <div class="composer">
            <button class="btn primary" id="udp-send-one" disabled={!is_open} onclick={send_one}>
                { l.t("Send one datagram", "发送一个数据报") }
            </button>
            <label for="udp-burst-size">{ l.t("Burst of", "连发") }</label>
            <input id="udp-burst-size" type="number" min="1" max={MAX_BURST.to_string()}
                value={burst_size.to_string()} oninput={on_size} />
            <button class="btn" id="udp-send-burst" disabled={!is_open} onclick={send_burst}>
                { l.t("Send burst: UDP vs WebSocket", "连发：UDP 对比 WebSocket") }
            </button>
        </div>
    }
}
