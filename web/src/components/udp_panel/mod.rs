//! B/S over UDP: this browser's WebTransport session. One datagram, or a burst of N sent at
//! once over WebTransport datagrams (UDP: some may be lost, some may come back out of order)
//! beside the same burst over the WebSocket bridge (TCP: all back, in order), with each
//! reply's round-trip time, and the path and bytes of one datagram.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use gloo_timers::callback::Timeout;
use yew::prelude::*;

use super::widgets::fmt_ms;
use crate::i18n::Lang;
use crate::services::wt::{Link, LinkEvent, supported};
use crate::util;

/// How long after the last send a burst waits for stragglers before it calls the rest lost.
const WAIT_MS: u32 = 1500;
/// The largest burst the page sends.
const MAX_BURST: usize = 500;

#[derive(Properties, PartialEq)]
pub struct UdpPanelProps {
    pub lang: Lang,
}

/// One transport's run of a burst.
#[derive(Clone, Default, PartialEq)]
struct Run {
    /// When each message was sent (`performance.now()`), by sequence number.
    sent: Vec<f64>,
    /// For each sequence number that came back: (arrival order, round-trip ms).
    back: HashMap<usize, (usize, f64)>,
    /// No more replies are awaited.
    done: bool,
}

impl Run {
    fn new(n: usize) -> Self {
        Run {
            sent: vec![0.0; n],
            ..Run::default()
        }
    }

    fn reply(&mut self, seq: usize) {
        if seq < self.sent.len() && !self.back.contains_key(&seq) {
            let order = self.back.len();
            self.back
                .insert(seq, (order, util::now_ms() - self.sent[seq]));
        }
    }

    /// Replies that arrived after a later-sent one.
    fn out_of_order(&self) -> usize {
        let mut arrivals: Vec<(usize, usize)> =
            self.back.iter().map(|(s, (o, _))| (*o, *s)).collect();
        arrivals.sort_unstable();
        let mut max_seen = None;
        let mut late = 0;
        for (_, seq) in arrivals {
            match max_seen {
                Some(m) if seq < m => late += 1,
                _ => max_seen = Some(seq),
            }
        }
        late
    }

    fn rtt_percentile(&self, p: f64) -> Option<f64> {
        let mut rtts: Vec<f64> = self.back.values().map(|(_, r)| *r).collect();
        if rtts.is_empty() {
            return None;
        }
        rtts.sort_by(f64::total_cmp);
        let i = ((rtts.len() as f64 - 1.0) * p).round() as usize;
        rtts.get(i).copied()
    }
}

#[derive(Clone, PartialEq)]
enum Status {
    Connecting,
    Open,
    Closed(String),
}

/// The panel's state; the links live beside it (they are not `PartialEq`).
#[derive(Clone, PartialEq)]
struct Udp {
    status: Status,
    /// `--udp-drop` as the server reported it.
    drop_percent: Option<f64>,
    /// The burst in flight or last finished: which one (messages carry it) and both runs.
    burst: u32,
    udp: Option<Run>,
    ws: Option<Run>,
    /// The last single datagram's reply, or that it has not come (yet).
    last: Option<Result<(String, f64), String>>,
    single_sent: Option<(String, f64)>,
}

enum Action {
    Link(LinkEvent),
    WsReply(String),
    Burst(u32, usize),
    /// When each message of a burst was sent, by sequence number.
    WsSent(u32, Vec<f64>),
    UdpSent(u32, Vec<f64>),
    Single(String, f64),
    SingleTimeout,
    Finish(u32),
}

impl Reducible for Udp {
    type Action = Action;

    fn reduce(self: Rc<Self>, action: Action) -> Rc<Self> {
        let mut s = (*self).clone();
        match action {
            Action::Link(LinkEvent::Info(json)) => {
                s.drop_percent = serde_json::from_str::<serde_json::Value>(&json)
                    .ok()
                    .and_then(|v| v.get("udp_drop").and_then(|d| d.as_f64()));
            }
            Action::Link(LinkEvent::Open) => s.status = Status::Open,
            Action::Link(LinkEvent::Closed(why)) => s.status = Status::Closed(why),
            Action::Link(LinkEvent::Reply(text)) => {
                let payload = text.split_once("]:").map(|(_, p)| p).unwrap_or(&text);
                if let Some((burst, seq)) = parse_tag(payload, 'u') {
                    if burst == s.burst
                        && let Some(run) = s.udp.as_mut()
                    {
                        run.reply(seq);
                    }
                } else if let Some((sent, at)) = &s.single_sent
                    && payload == sent
                {
                    s.last = Some(Ok((text.clone(), util::now_ms() - at)));
                    s.single_sent = None;
                }
            }
            Action::WsReply(text) => {
                let payload = text.split_once("]:").map(|(_, p)| p).unwrap_or(&text);
                if let Some((burst, seq)) = parse_tag(payload, 'w')
                    && burst == s.burst
                    && let Some(run) = s.ws.as_mut()
                {
                    run.reply(seq);
                }
            }
            Action::Burst(id, n) => {
                s.burst = id;
                s.udp = Some(Run::new(n));
                s.ws = Some(Run::new(n));
            }
            Action::UdpSent(id, times) => {
                if id == s.burst
                    && let Some(run) = s.udp.as_mut()
                {
                    run.sent = times;
                }
            }
            Action::WsSent(id, times) => {
                if id == s.burst
                    && let Some(run) = s.ws.as_mut()
                {
                    run.sent = times;
                }
            }
            Action::Single(text, at) => {
                s.single_sent = Some((text, at));
                s.last = None;
            }
            Action::Finish(id) => {
                if id == s.burst {
                    for run in [s.udp.as_mut(), s.ws.as_mut()].into_iter().flatten() {
                        run.done = true;
                    }
                }
            }
            Action::SingleTimeout => {
                if let Some((text, _)) = s.single_sent.take() {
                    s.last = Some(Err(text));
                }
            }
        }
        Rc::new(s)
    }
}

/// `u3-17` → (3, 17) for prefix `u`.
fn parse_tag(payload: &str, prefix: char) -> Option<(u32, usize)> {
    let rest = payload.strip_prefix(prefix)?;
    let (burst, seq) = rest.split_once('-')?;
    Some((burst.parse().ok()?, seq.parse().ok()?))
}

#[component]
pub fn UdpPanel(props: &UdpPanelProps) -> Html {
    let l = props.lang;
    let has_wt = use_memo((), |_| supported());
    let state = use_reducer(|| Udp {
        status: Status::Connecting,
        drop_percent: None,
        burst: 0,
        udp: None,
        ws: None,
        last: None,
        single_sent: None,
    });
    let link = use_mut_ref(|| None::<Link>);
    let ws_link = use_mut_ref(|| None::<Link>);
    let timer = use_mut_ref(|| None::<Timeout>);
    let single_timer = use_mut_ref(|| None::<Timeout>);
    let burst_size = use_state(|| 20usize);

    let connect = {
        let state = state.clone();
        let link = link.clone();
        Callback::from(move |()| {
            let dispatch = state.dispatcher();
            *link.borrow_mut() = None;
            state.dispatch(Action::Link(LinkEvent::Closed(String::new())));
            *link.borrow_mut() = Some(Link::webtransport(Callback::from(move |e| {
                dispatch.dispatch(Action::Link(e))
            })));
        })
    };
    {
        let connect = connect.clone();
        let has_wt = *has_wt;
        use_effect_with((), move |_| {
            if has_wt {
                connect.emit(());
            }
        });
    }

    let finish_later = {
        let timer = timer.clone();
        let ws_link = ws_link.clone();
        let dispatch = state.dispatcher();
        move |id: u32| {
            let ws_link = ws_link.clone();
            let dispatch = dispatch.clone();
            *timer.borrow_mut() = Some(Timeout::new(WAIT_MS, move || {
                dispatch.dispatch(Action::Finish(id));
                *ws_link.borrow_mut() = None;
            }));
        }
    };

    let send_one = {
        let link = link.clone();
        let dispatch = state.dispatcher();
        let single_timer = single_timer.clone();
        Callback::from(move |_: MouseEvent| {
            let text = format!("hello over UDP {}", util::clock_now());
            if let Some(link) = link.borrow().as_ref() {
                dispatch.dispatch(Action::Single(text.clone(), util::now_ms()));
                link.send(&text);
                let dispatch = dispatch.clone();
                *single_timer.borrow_mut() = Some(Timeout::new(WAIT_MS, move || {
                    dispatch.dispatch(Action::SingleTimeout)
                }));
            }
        })
    };

    let send_burst = {
        let link = link.clone();
        let ws_link = ws_link.clone();
        let state = state.clone();
        let burst_size = burst_size.clone();
        Callback::from(move |_: MouseEvent| {
            let n = (*burst_size).clamp(1, MAX_BURST);
            let id = state.burst + 1;
            let dispatch = state.dispatcher();
            dispatch.dispatch(Action::Burst(id, n));
            // Over UDP: all N datagrams at once.
            // Replies are handled only after this handler returns, so the times are in place.
            if let Some(link) = link.borrow().as_ref() {
                let times = send_burst(n, |seq| link.send(&format!("u{id}-{seq}")));
                dispatch.dispatch(Action::UdpSent(id, times));
            }
            // The same burst over the WebSocket bridge, on a connection of its own.
            let sender: Rc<RefCell<Option<Link>>> = ws_link.clone();
            let on = {
                let dispatch = dispatch.clone();
                let sender = sender.clone();
                Callback::from(move |e: LinkEvent| match e {
                    LinkEvent::Open => {
                        if let Some(ws) = sender.borrow().as_ref() {
                            let times = send_burst(n, |seq| ws.send(&format!("w{id}-{seq}")));
                            dispatch.dispatch(Action::WsSent(id, times));
                        }
                    }
                    LinkEvent::Reply(text) => dispatch.dispatch(Action::WsReply(text)),
                    _ => {}
                })
            };
            *sender.borrow_mut() = Some(Link::websocket(&util::ws_url("ws?tag=udp-compare"), on));
            finish_later(id);
        })
    };

    let on_size = {
        let burst_size = burst_size.clone();
        Callback::from(move |e: InputEvent| {
            let value = e
                .target()
                .and_then(|t| js_sys::Reflect::get(&t, &"value".into()).ok())
                .and_then(|v| v.as_string());
            if let Some(v) = value
                && let Ok(n) = v.trim().parse::<usize>()
            {
                burst_size.set(n.clamp(1, MAX_BURST));
            }
        })
    };

    let head = html! {
        <div class="panel-head">
            <div>
                <h2 id="udp-title"><span class="tag bs">{ "B/S" }</span>{ l.t("This browser over UDP", "本浏览器 · UDP") }</h2>
                <p class="sub">{ l.t(
                    "page → WebTransport datagram → QUIC → UDP → gateway → UDP → echo",
                    "页面 → WebTransport 数据报 → QUIC → UDP → 网关 → UDP → 回显",
                ) }</p>
            </div>
        </div>
    };

    if !*has_wt {
        return html! {
            <section class="panel udp" id="udp-panel" aria-labelledby="udp-title">
                { head }
                <p class="warn" id="udp-unsupported">{ l.t(
                    "This browser has no WebTransport, so this page cannot send UDP datagrams. A page has no raw UDP socket; WebTransport (HTTP/3 over QUIC over UDP) is its only datagram path. Try a recent Chrome, Edge or Firefox.",
                    "这个浏览器不支持 WebTransport，所以本页面无法发送 UDP 数据报。网页没有原始 UDP 套接字；WebTransport（基于 QUIC、再基于 UDP 的 HTTP/3）是它唯一的数据报通道。请换用较新的 Chrome、Edge 或 Firefox。",
                ) }</p>
            </section>
        };
    }

    let (status_key, status_text) = match &state.status {
        Status::Connecting => ("connecting", l.t("connecting…", "连接中…").to_owned()),
        Status::Open => ("open", l.t("open", "已连接").to_owned()),
        Status::Closed(why) => ("closed", format!("{} {why}", l.t("closed:", "已关闭："))),
    };
    let pill_class = match status_key {
        "open" => "pill ok",
        "connecting" => "pill wait",
        _ => "pill bad",
    };
    let is_open = state.status == Status::Open;
    let reconnect = {
        let connect = connect.clone();
        Callback::from(move |_: MouseEvent| connect.emit(()))
    };

    let drop_note = match state.drop_percent {
        Some(p) if p > 0.0 => format!(
            "{} {p}% {}",
            l.t("The UDP echo drops", "UDP 回显服务故意丢弃"),
            l.t("of datagrams on purpose (--udp-drop).", "的数据报（--udp-drop）。")
        ),
        _ => l
            .t(
                "Loopback almost never loses a datagram; start the server with --udp-drop 30 to see loss.",
                "回环地址几乎不会丢包；用 --udp-drop 30 启动服务器就能看到丢包。",
            )
            .to_owned(),
    };

    let last = match &state.last {
        Some(Ok((text, rtt))) => html! {
            <p class="entry received" id="udp-last"><span class="msg">{ text.clone() }</span>
                <span class="rtt">{ format!(" · {}", fmt_ms(*rtt)) }</span></p>
        },
        Some(Err(text)) => html! {
            <p class="entry warn" id="udp-last-lost">{ format!("{} {text}", l.t("No reply (lost?):", "没有回复（丢了？）：")) }</p>
        },
        None => html! {},
    };

    html! {
        <section class="panel udp" id="udp-panel" aria-labelledby="udp-title">
            { head }
            <div class="conn-bar">
                <span class={pill_class} id="udp-status" data-status={status_key} role="status">
                    <span class="dot" aria-hidden="true"></span>{ status_text }
                </span>
                if !is_open {
                    <button class="btn ghost" id="udp-reconnect" onclick={reconnect}>{ l.t("Reconnect", "重新连接") }</button>
                }
            </div>
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
            { last }
            <p class="hint" id="udp-drop-note">{ drop_note }</p>
            if let Some(run) = &state.udp {
                { run_view(l, "udp", "WebTransport · UDP", run) }
            }
            if let Some(run) = &state.ws {
                { run_view(l, "ws", "WebSocket · TCP", run) }
            }
            { wire_view(l) }
        </section>
    }
}

/// One transport's burst: a cell per message (green: back, with its arrival order; red: lost;
/// amber: came back after a later one), and a summary.
fn run_view(l: Lang, id: &str, title: &str, run: &Run) -> Html {
    let n = run.sent.len();
    let back = run.back.len();
    let late = run.out_of_order();
    let lost = if run.done { n - back } else { 0 };
    let mut summary = format!("{title}: {back}/{n} {}", l.t("back", "返回"));
    if run.done && lost > 0 {
        summary.push_str(&format!(" · {lost} {}", l.t("lost", "丢失")));
    }
    summary.push_str(&if late > 0 {
        format!(" · {late} {}", l.t("out of order", "乱序"))
    } else {
        format!(" · {}", l.t("in order", "按顺序"))
    });
    if let (Some(p50), Some(p99)) = (run.rtt_percentile(0.5), run.rtt_percentile(0.99)) {
        summary.push_str(&format!(" · RTT p50 {} · p99 {}", fmt_ms(p50), fmt_ms(p99)));
    }
    let mut last_seq = None;
    let mut order: Vec<(usize, usize)> = run.back.iter().map(|(s, (o, _))| (*o, *s)).collect();
    order.sort_unstable();
    let mut late_seqs = std::collections::HashSet::new();
    for (_, seq) in order {
        match last_seq {
            Some(m) if seq < m => {
                late_seqs.insert(seq);
            }
            _ => last_seq = Some(seq),
        }
    }
    html! {
        <div class={classes!("burst", id.to_owned())} id={format!("{id}-burst")}
            data-back={back.to_string()} data-sent={n.to_string()} data-done={run.done.to_string()}>
            <p class="small">{ summary }</p>
            <ol class="cells" style="display:flex;flex-wrap:wrap;gap:2px;list-style:none;padding:0;margin:0">
                { for (0..n).map(|seq| {
                    let (class, label, title) = match run.back.get(&seq) {
                        Some((order, rtt)) if late_seqs.contains(&seq) => ("cell back late", format!("{}", order + 1), format!("#{seq} ↩{} {}", order + 1, fmt_ms(*rtt))),
                        Some((order, rtt)) => ("cell back", format!("{}", order + 1), format!("#{seq} ↩{} {}", order + 1, fmt_ms(*rtt))),
                        None if run.done => ("cell lost", "×".to_owned(), format!("#{seq} {}", l.t("lost", "丢失"))),
                        None => ("cell wait", "·".to_owned(), format!("#{seq}")),
                    };
                    let color = match class {
                        "cell back" => "#2e7d32",
                        "cell back late" => "#b26a00",
                        "cell lost" => "#c62828",
                        _ => "#888",
                    };
                    html! {
                        <li class={class} title={title}
                            style={format!("min-width:1.6em;text-align:center;font-size:11px;color:#fff;background:{color};border-radius:3px")}>
                            { label }
                        </li>
                    }
                }) }
            </ol>
        </div>
    }
}

/// The path of one datagram and its bytes on the wire.
fn wire_view(l: Lang) -> Html {
    html! {
        <details class="more" id="udp-wire">
            <summary>{ l.t("One datagram on the wire", "一个数据报在线路上") }</summary>
            <p class="small">{ l.t(
                "\"hi\" from this page: 2 bytes of payload + 1 byte HTTP/3 session id (quarter stream id) + 2 bytes QUIC DATAGRAM frame (type, length) + about 10 bytes QUIC short header (flags, connection id, packet number) + 16 bytes encryption tag + 8 bytes UDP header + 20 bytes IPv4 (40 IPv6). No handshake per message, no retransmission, no ordering: what is lost stays lost. The server's gateway sends the 2 bytes on as one plain UDP datagram (8 + 20 bytes of headers) to the echo.",
                "本页面发出的 \"hi\"：2 字节负载 + 1 字节 HTTP/3 会话编号（quarter stream id）+ 2 字节 QUIC DATAGRAM 帧（类型、长度）+ 约 10 字节 QUIC 短包头（标志、连接 ID、包号）+ 16 字节加密校验 + 8 字节 UDP 头 + 20 字节 IPv4 头（IPv6 为 40）。每条消息没有握手、没有重传、不保证顺序：丢了就是丢了。服务器的网关把这 2 字节作为一个普通 UDP 数据报（8 + 20 字节头）转给回显服务。",
            ) }</p>
            <p class="small">{ l.t(
                "Once per session: the QUIC handshake (TLS 1.3 inside QUIC, about 3–5 KB with the certificate) and an HTTP/3 CONNECT request with :protocol = webtransport. Over WebSocket the same \"hi\" is an 8-byte frame inside TCP, and always arrives, in order.",
                "每个会话一次：QUIC 握手（QUIC 内的 TLS 1.3，连同证书约 3–5 KB）和一个 :protocol = webtransport 的 HTTP/3 CONNECT 请求。走 WebSocket 时，同样的 \"hi\" 是 TCP 里的一个 8 字节帧，而且一定按顺序到达。",
            ) }</p>
        </details>
    }
}

/// Sends messages `0..n` one after another with `send` and returns when each went out, for
/// the round-trip times (replies are handled only after the caller returns, so these are in
/// place first).
fn send_burst<R>(n: usize, mut send: impl FnMut(usize) -> R) -> Vec<f64> {
    (0..n)
        .map(|seq| {
            let at = util::now_ms();
            send(seq);
            at
        })
        .collect()
}
