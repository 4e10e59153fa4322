//! The teaching strip: what differs between the two styles, computed from the real message.
//!
//! * [`LayerPath`] — the path of one message through the layers, for B/S and for C/S.
//! * [`WireBytes`] — the bytes on the wire for the last message, both ways, both styles:
//!   where the server captures packets, the B/S rows are this page's own packets as captured
//!   (measured); the rest is computed, and each row says which it is.
//! * [`Concepts`] — TCP vs UDP, IPv4/IPv6, C/S vs B/S, in the lesson's words.

use socklab_protocol::{Direction, HandshakeSize, PacketEvent, STAMP_LEN, ServerInfo, wire};
use yew::prelude::*;

use super::widgets::fmt_bytes;
use crate::i18n::Lang;
use crate::state::bridge::{Body, Exchange};
use crate::state::packets::{OwnPackets, PacketLog, newest_data};
use crate::util;

#[derive(Properties, PartialEq)]
pub struct TeachingProps {
    pub lang: Lang,
    pub exchange: Exchange,
    pub info: Option<ServerInfo>,
    /// This page's bridge tag (part of the upgrade request's size).
    pub tag: AttrValue,
    /// The upgrade's real size, as the server saw it (else the page estimates it).
    pub handshake: Option<HandshakeSize>,
    /// Where the server captures packets: this page's own sessions' packets.
    pub own: OwnPackets,
}

/// The sizes of one message and its reply, in both styles.
#[derive(Debug, Clone, PartialEq)]
struct Sizes {
    /// The message as typed (example `hi` before anything was sent).
    text: String,
    /// Whether it is the example rather than a real message.
    example: bool,
    /// Its UTF-8 bytes (the WebSocket payload).
    msg: usize,
    /// What goes over TCP to the echo: the message plus `\n`.
    line: usize,
    /// The reply as the bridge forwards it (one line, no `\n`).
    reply: usize,
}

impl Sizes {
    fn of(exchange: &Exchange) -> Sizes {
        // (shown, payload bytes, bytes the bridge writes to the echo, example?)
        let (text, msg, line, example) = match &exchange.sent {
            _ if exchange.count == 0 => ("hi".to_string(), 2, 3, true),
            // Binary goes to the echo verbatim: no `\n` added.
            Body::Binary(b) => (util::hex_ascii(b, 12), b.len(), b.len(), false),
            Body::Text(t) => (
                t.clone(),
                t.len(),
                t.len() + usize::from(!t.ends_with('\n')),
                false,
            ),
            Body::Note(_) => (String::new(), 0, 0, false),
        };
        // Before the reply arrives, a one-line message's reply is stamp + message (the echo
        // answers an unfinished line too, without its missing `\n`).
        let ends_line = match &exchange.sent {
            Body::Binary(b) => b.last() == Some(&b'\n'),
            _ => true,
        };
        let reply = exchange
            .reply
            .as_ref()
            .map(|r| r.len())
            .unwrap_or((STAMP_LEN + line).saturating_sub(usize::from(ends_line)));
        Sizes {
            text,
            example,
            msg,
            line,
            reply,
        }
    }
}

#[component]
pub fn Teaching(props: &TeachingProps) -> Html {
    let l = props.lang;
    let sizes = Sizes::of(&props.exchange);
    let info = props.info.as_ref();
    let port_of = |addrs: Option<&Vec<String>>| {
        addrs
            .and_then(|a| a.first())
            .and_then(|a| a.rsplit_once(':'))
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| socklab_protocol::DEFAULT_ECHO_PORT.to_string())
    };
    let echo_port = AttrValue::from(format!(":{}", port_of(info.map(|i| &i.tcp))));
    let udp_cmd = AttrValue::from(match info.and_then(|i| i.udp.first()) {
        Some(addr) => match addr.rsplit_once(':') {
            Some((host, port)) => format!("nc -u {} {port}", host.trim_matches(['[', ']'])),
            None => format!("nc -u {addr}"),
        },
        None => format!("nc -u 127.0.0.1 {}", socklab_protocol::DEFAULT_ECHO_PORT),
    });
    html! {
        <section class="teach" aria-labelledby="teach-title">
            <h2 id="teach-title">{ l.t("What is different", "两者有何不同") }</h2>
            <LayerPath lang={l} count={props.exchange.count} msg={sizes.msg} line={sizes.line}
                echo={echo_port.clone()} />
            <WireBytes lang={l} sizes={sizes} info={props.info.clone()} tag={props.tag.clone()}
                handshake={props.handshake} own={props.own.clone()} />
            <Concepts lang={l} udp={udp_cmd} />
        </section>
    }
}

#[derive(Properties, PartialEq)]
struct PathProps {
    lang: Lang,
    /// Messages sent so far (a new one replays the animation, unless it is still running).
    count: u64,
    msg: usize,
    line: usize,
    /// `:21566`, the echo's port.
    echo: AttrValue,
}

/// One host drawn as its protocol stack: application over transport over network.
fn stack(name: &str, sub: &str, app: &str, transport: &str, class: &'static str) -> Html {
    html! {
        <div class={classes!("node", class)}>
            <div class="node-name">{ name.to_string() }<small>{ sub.to_string() }</small></div>
            <div class="layer app">{ app.to_string() }</div>
            <div class="layer tr">{ transport.to_string() }</div>
            <div class="layer net">{ "IP" }</div>
        </div>
    }
}

/// A wire between two hosts, with what travels on it; `step` orders the animation.
fn link(what: String, note: &str, count: u64, step: u8, long: bool) -> Html {
    html! {
        <div class={classes!("link", long.then_some("long"))}>
            <div class="wire" aria-hidden="true">
                if count > 0 {
                    <span key={count.to_string()} class={format!("packet step{step}")}></span>
                }
            </div>
            <div class="link-what">{ what }</div>
            <div class="link-note">{ note.to_string() }</div>
        </div>
    }
}

/// How long one run of the packet animation lasts (two 0.8 s legs, static/style.css), in ms.
const ANIMATION_MS: f64 = 1600.0;

/// The path of one message through the layers, B/S above C/S.
#[component]
fn LayerPath(props: &PathProps) -> Html {
    let l = props.lang;
    let frame = wire::ws_frame_len(props.msg, true);
    // A new message replays the animation only once the last run is over: messages faster
    // than the animation would otherwise restart it (new nodes, new paint) on every one.
    let run = use_mut_ref(|| (0u64, f64::NEG_INFINITY));
    let count = {
        let mut run = run.borrow_mut();
        let now = util::now_ms();
        if props.count != run.0 && now - run.1 >= ANIMATION_MS {
            *run = (props.count, now);
        }
        run.0
    };
    html! {
        <div class="card path">
            <h3>{ l.t("The path of one message", "一条消息走过的路") }</h3>
            <p class="card-sub">{ l.t(
                "Each host is a stack of layers: the application speaks its protocol, TCP carries the bytes reliably and in order, IP moves packets between addresses.",
                "每台主机都是一叠分层：应用层说自己的协议，TCP 可靠、按序地运送字节，IP 在地址之间转发数据包。",
            ) }</p>
            <div class="legend" aria-hidden="true">
                <span class="layer app">{ l.t("application", "应用层") }</span>
                <span class="layer tr">{ l.t("transport", "传输层") }</span>
                <span class="layer net">{ l.t("network", "网络层") }</span>
            </div>
            <div class="lane">
                <div class="lane-label"><span class="tag bs">{ "B/S" }</span></div>
                { stack(l.t("Browser", "浏览器"), l.t("this page", "本页面"),
                    l.t("WebSocket (after one HTTP upgrade)", "WebSocket（先做一次 HTTP 升级）"), "TCP", "browser") }
                { link(format!("{} · {frame} B", l.t("WS frame", "WS 帧")),
                    l.t("masked, 2–14 B header", "带掩码，2–14 B 帧头"), count, 1, false) }
                { stack(l.t("Bridge", "桥"), "/ws",
                    l.t("frame ⇄ line", "帧 ⇄ 行"), l.t("TCP ×2", "TCP ×2"), "bridge") }
                { link(format!("{} · {} B", l.t("line", "行"), props.line),
                    l.t("2nd TCP connection", "第二条 TCP 连接"), count, 2, false) }
                { stack(l.t("Echo", "回显"), &props.echo, "[time]:line", "TCP", "echo") }
            </div>
            <div class="lane">
                <div class="lane-label"><span class="tag cs">{ "C/S" }</span></div>
                { stack(l.t("Client", "客户端"), "nc · client.py",
                    l.t("your line", "你的一行"), "TCP", "client") }
                { link(format!("{} · {} B", l.t("line", "行"), props.line),
                    l.t("straight to TCP", "直接走 TCP"), count, 1, true) }
                { stack(l.t("Echo", "回显"), &props.echo, "[time]:line", "TCP", "echo") }
            </div>
            <p class="path-foot">{ l.t(
                "B/S: two TCP connections and one extra hop, because a page may not open raw sockets. C/S: one TCP connection, straight to the service.",
                "B/S：两条 TCP 连接、多一跳，因为网页不能直接打开原始套接字。C/S：一条 TCP 连接，直达服务。",
            ) }</p>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct WireProps {
    lang: Lang,
    sizes: Sizes,
    info: Option<ServerInfo>,
    tag: AttrValue,
    handshake: Option<HandshakeSize>,
    own: OwnPackets,
}

/// One segment of a packet bar.
struct Seg {
    class: &'static str,
    label: &'static str,
    bytes: usize,
}

/// One packet: who sends it to whom, its parts, and whether they were measured (a captured
/// packet) or computed.
struct Packet {
    from_to: String,
    segs: Vec<Seg>,
    measured: bool,
}

impl Packet {
    fn total(&self) -> usize {
        self.segs.iter().map(|s| s.bytes).sum()
    }
}

/// The bytes on the wire for the last message, as packet bars.
#[component]
fn WireBytes(props: &WireProps) -> Html {
    let l = props.lang;
    let s = &props.sizes;
    let server_v6 = props
        .info
        .as_ref()
        .and_then(|i| i.tcp.first())
        .is_some_and(|a| a.starts_with('['));
    let ipv6 = use_state(|| server_v6);
    let (cs, bs) = rows(l, s, *ipv6, &props.own);
    let any_measured = bs.iter().any(|p| p.measured);
    let capture = props.info.as_ref().is_some_and(|i| i.capture);

    html! {
        <div class="card wire-card" id="wire-bytes">
            <div class="card-head">
                <h3>{ l.t("Bytes on the wire", "线上的字节") }</h3>
                { ip_toggle(l, &ipv6) }
            </div>
            { message_line(l, s) }
            { row_sources(l, any_measured, capture) }
            <div class="seg-legend" aria-hidden="true">
                <span class="seg net">{ if *ipv6 { "IPv6" } else { "IPv4" } }</span>
                <span class="seg tr">{ "TCP" }</span>
                <span class="seg ws">{ l.t("WS header", "WS 帧头") }</span>
                <span class="seg mask">{ l.t("mask", "掩码") }</span>
                <span class="seg pay">{ l.t("payload", "数据") }</span>
            </div>
            { packet_bars(l, &cs, &bs) }
            { frame_anatomy(l, s.msg) }
            // A component of its own: the message changes on every send, the upgrade (and the
            // browser's request rebuilt to estimate it) only with the language or the session.
            <OncePerConnection lang={l} tag={props.tag.clone()} handshake={props.handshake} />
        </div>
    }
}

/// The IPv4 / IPv6 switch the computed rows follow.
fn ip_toggle(l: Lang, ipv6: &UseStateHandle<bool>) -> Html {
    let set_v4 = {
        let ipv6 = ipv6.clone();
        Callback::from(move |_: MouseEvent| ipv6.set(false))
    };
    let set_v6 = {
        let ipv6 = ipv6.clone();
        Callback::from(move |_: MouseEvent| ipv6.set(true))
    };
    let v6 = **ipv6;
    html! {
        <div class="seg-toggle" role="group" aria-label={l.t("IP version", "IP 版本")}>
            <button class={classes!("btn","small", (!v6).then_some("active"))} onclick={set_v4}
                aria-pressed={(!v6).to_string()}>{ "IPv4" }</button>
            <button class={classes!("btn","small", v6.then_some("active"))} onclick={set_v6}
                aria-pressed={v6.to_string()}>{ "IPv6" }</button>
        </div>
    }
}

/// Which message the rows are for: the last one sent (its first 40 characters), or the example.
fn message_line(l: Lang, s: &Sizes) -> Html {
    let shown = if s.text.chars().count() > 40 {
        format!("{}…", s.text.chars().take(40).collect::<String>())
    } else {
        s.text.clone()
    };
    html! {
        <p class="card-sub">
            { if s.example { l.t("For the example message ", "以示例消息 ") } else { l.t("For your last message ", "你的上一条消息 ") } }
            <code class="wire-msg">{ shown }</code>
            { format!(" ({} B) ", s.msg) }
            { l.t("and its reply, one packet per row.", "及其回复，每行一个数据包。") }
        </p>
    }
}

/// What "measured" and "computed" rows are, and why no row is measured yet, when none is.
fn row_sources(l: Lang, any_measured: bool, capture: bool) -> Html {
    html! {
        <p class="card-sub wire-source">
            <span class="measured">{ l.t("measured", "实测") }</span>
            { l.t(" rows are this page's own packets as the server captured them (IP and TCP headers as sent). ",
                  " 的行是服务器抓到的本页面自己的数据包（IP 头与 TCP 头按实际发送）。") }
            <span class="estimate">{ l.t("computed", "计算") }</span>
            { l.t(" rows are what Linux sends for that payload (TCP header with timestamps).",
                  " 的行是 Linux 发送这段数据时的大小（TCP 头含时间戳选项）。") }
            if !any_measured {
                { format!(" {}", if capture {
                    l.t("The B/S rows become measured once this message's packets are captured.",
                        "本消息的数据包被抓到后，B/S 各行即为实测。")
                } else {
                    l.t("This server does not capture packets (see Packets above), so every row is computed.",
                        "本服务器没有开启抓包（见上方“数据包”），所以每一行都是计算值。")
                }) }
            }
        </p>
    }
}

/// The C/S and B/S packets as bars on one scale, each style with its total.
fn packet_bars(l: Lang, cs: &[Packet], bs: &[Packet]) -> Html {
    let scale = cs
        .iter()
        .chain(bs.iter())
        .map(Packet::total)
        .max()
        .unwrap_or(1)
        .max(1);
    let cs_total: usize = cs.iter().map(Packet::total).sum();
    let bs_total: usize = bs.iter().map(Packet::total).sum();
    html! {
        <div class="packets">
            <div class="packets-title"><span class="tag cs">{ "C/S" }</span>
                { format!("{} {}", l.t("total", "合计"), fmt_bytes(cs_total as u64)) }</div>
            { for cs.iter().map(|p| packet_view(l, p, scale)) }
            <div class="packets-title"><span class="tag bs">{ "B/S" }</span>
                { format!("{} {}", l.t("total", "合计"), fmt_bytes(bs_total as u64)) }</div>
            { for bs.iter().map(|p| packet_view(l, p, scale)) }
        </div>
    }
}

/// The browser's frame for a `msg`-byte text message, byte by byte.
fn frame_anatomy(l: Lang, msg: usize) -> Html {
    html! {
        <div class="anatomy">
            <div class="anatomy-title">{ l.t("The browser's frame, byte by byte", "浏览器发出的帧，逐字节") }</div>
            <div class="bytes">
                <span class="byte ws" title="FIN=1, opcode=1 (text)">{ "81" }<small>{ l.t("FIN+text", "FIN+文本") }</small></span>
                { ws_len_bytes(msg) }
                <span class="byte mask">{ "?? ?? ?? ??" }<small>{ l.t("random mask key", "随机掩码") }</small></span>
                <span class="byte pay">{ format!("{msg} B") }<small>{ l.t("payload XOR mask", "数据 XOR 掩码") }</small></span>
            </div>
            <p class="small muted">{ l.t(
                "Browsers must mask every frame they send (so a confused proxy can't be fooled into caching attacker bytes); servers never mask.",
                "浏览器发出的每一帧都必须加掩码（防止被混淆的代理缓存攻击者构造的字节）；服务器发出的帧不加掩码。",
            ) }</p>
        </div>
    }
}

/// What [`OncePerConnection`] shows.
#[derive(Properties, PartialEq)]
struct OnceProps {
    lang: Lang,
    /// This page's bridge tag (part of the upgrade request's size).
    tag: AttrValue,
    /// The upgrade's real size, as the server saw it (else the page estimates it).
    handshake: Option<HandshakeSize>,
}

/// What each style costs once per connection: handshakes, and B/S's HTTP upgrade.
#[component]
fn OncePerConnection(props: &OnceProps) -> Html {
    let l = props.lang;
    let (est_req, est_resp, up_text) = upgrade_estimate(&props.tag);
    // The server's count when it sent one, else the page's reconstruction.
    let (up_req, up_resp, measured) = match props.handshake {
        Some(h) => (h.request as usize, h.response as usize, true),
        None => (est_req, est_resp, false),
    };
    let approx = if measured { "=" } else { "≈" };
    html! {
        <div class="once">
            <div class="once-title">{ l.t("Once per connection", "每个连接只有一次") }</div>
            <ul>
                <li><span class="tag cs">{ "C/S" }</span>{ l.t(
                    "TCP three-way handshake (SYN, SYN-ACK, ACK) — then the bytes flow.",
                    "TCP 三次握手（SYN、SYN-ACK、ACK）——然后就开始传数据。",
                ) }</li>
                <li><span class="tag bs">{ "B/S" }</span>{ format!("{} {approx} {} B + {} {approx} {} B, {}",
                    l.t("TCP handshake, then the HTTP upgrade: request", "TCP 握手，然后 HTTP 升级：请求"),
                    up_req,
                    l.t("101 answer", "101 响应"),
                    up_resp,
                    l.t("then a second TCP handshake from the bridge to the echo.", "再加上桥到回显服务的第二次 TCP 握手。"),
                ) }
                if measured {
                    <span class="measured">{ l.t("measured by the server", "服务器实测") }</span>
                } else {
                    <span class="estimate">{ l.t("estimate", "估算") }</span>
                }</li>
            </ul>
            <details>
                <summary>{ l.t("The upgrade request, as this browser likely sent it", "本浏览器大概发出的升级请求") }</summary>
                <pre class="http"><code>{ up_text }</code></pre>
            </details>
        </div>
    }
}

/// The packet rows of the last message: C/S (computed: this page has no raw client) and B/S
/// (each measured where the capture shows this message's packet, else computed for IPv4 or
/// IPv6 as `ipv6` says).
fn rows(l: Lang, s: &Sizes, ipv6: bool, own: &OwnPackets) -> ([Packet; 2], [Packet; 4]) {
    let ws_req = wire::ws_frame_overhead(s.msg, true) - wire::WS_MASK_KEY;
    let ws_rep = wire::ws_frame_overhead(s.reply, false);
    let row = |from_to, parts, seen| packet(s, ipv6, from_to, parts, seen);
    let cs = [
        row(
            l.t("client → echo", "客户端 → 回显"),
            vec![payload(l, s.line)],
            None,
        ),
        row(
            l.t("echo → client", "回显 → 客户端"),
            vec![payload(l, s.reply + 1)],
            None,
        ),
    ];
    let bs = [
        row(
            l.t("browser → bridge", "浏览器 → 桥"),
            vec![ws_head(l, ws_req), mask(l), payload(l, s.msg)],
            seen(own.ws.as_deref(), Direction::In, true),
        ),
        row(
            l.t("bridge → echo", "桥 → 回显"),
            vec![payload(l, s.line)],
            seen(own.upstream.as_deref(), Direction::In, false),
        ),
        row(
            l.t("echo → bridge", "回显 → 桥"),
            vec![payload(l, s.reply + 1)],
            seen(own.upstream.as_deref(), Direction::Out, false),
        ),
        row(
            l.t("bridge → browser", "桥 → 浏览器"),
            vec![ws_head(l, ws_rep), payload(l, s.reply)],
            seen(own.ws.as_deref(), Direction::Out, true),
        ),
    ];
    (cs, bs)
}

/// One packet of the message `s` with these payload parts, under its IP and TCP headers.
fn packet(
    s: &Sizes,
    ipv6: bool,
    from_to: &str,
    parts: Vec<Seg>,
    seen: Option<&PacketEvent>,
) -> Packet {
    // Measured when `seen` is this message's (its payload has exactly their size: until the
    // capture shows it, the newest is the one before).
    let payload: usize = parts.iter().map(|p| p.bytes).sum();
    let seen = seen.filter(|p| !s.example && p.payload_len as usize == payload);
    let mut segs = Vec::from(headers(seen, ipv6));
    segs.extend(parts);
    Packet {
        from_to: from_to.into(),
        segs,
        measured: seen.is_some(),
    }
}

/// A packet's IP and TCP headers: as captured in `seen`, else as Linux sends them.
fn headers(seen: Option<&PacketEvent>, ipv6: bool) -> [Seg; 2] {
    match seen {
        Some(p) => [
            Seg {
                class: "net",
                label: if p.ip == 6 { "IPv6" } else { "IPv4" },
                bytes: usize::from(p.ip_header),
            },
            Seg {
                class: "tr",
                label: "TCP",
                bytes: usize::from(p.transport_header),
            },
        ],
        None => [
            Seg {
                class: "net",
                label: if ipv6 { "IPv6" } else { "IPv4" },
                bytes: if ipv6 {
                    wire::IPV6_HEADER
                } else {
                    wire::IPV4_HEADER
                },
            },
            Seg {
                class: "tr",
                label: "TCP",
                bytes: wire::TCP_HEADER_WITH_TIMESTAMPS,
            },
        ],
    }
}

/// A payload segment of `bytes`.
fn payload(l: Lang, bytes: usize) -> Seg {
    Seg {
        class: "pay",
        label: l.t("payload", "数据"),
        bytes,
    }
}

/// A WebSocket frame header segment of `bytes`.
fn ws_head(l: Lang, bytes: usize) -> Seg {
    Seg {
        class: "ws",
        label: l.t("WS header", "WS 帧头"),
        bytes,
    }
}

/// The client frame's mask key segment.
fn mask(l: Lang) -> Seg {
    Seg {
        class: "mask",
        label: l.t("mask", "掩码"),
        bytes: wire::WS_MASK_KEY,
    }
}

/// The newest data segment that went `dir` in `log`, if the page has the log.
fn seen(log: Option<&PacketLog>, dir: Direction, websocket: bool) -> Option<&PacketEvent> {
    log.and_then(|log| newest_data(log, dir, websocket))
}

/// The length byte(s) of a client frame: `0x80 | len`, or 126/127 plus an extended length.
fn ws_len_bytes(len: usize) -> Html {
    let (hex, note) = match len {
        0..=125 => (format!("{:02x}", 0x80 | len), format!("MASK+{len}")),
        126..=65535 => (
            format!("fe {:02x} {:02x}", len >> 8, len & 0xff),
            format!("MASK+126, {len}"),
        ),
        _ => ("ff + 8 B".to_string(), format!("MASK+127, {len}")),
    };
    html! { <span class="byte ws" title="MASK bit + payload length">{ hex }<small>{ note }</small></span> }
}

fn packet_view(l: Lang, p: &Packet, scale: usize) -> Html {
    let total = p.total();
    html! {
        <div class="packet-row" data-measured={p.measured.to_string()} data-bytes={total.to_string()}>
            <span class="pr-label">{ p.from_to.clone() }
                if p.measured {
                    <span class="measured">{ l.t("measured", "实测") }</span>
                } else {
                    <span class="estimate">{ l.t("computed", "计算") }</span>
                }
            </span>
            <div class="bar" role="img" aria-label={p.segs.iter().map(|s| format!("{} {} B", s.label, s.bytes)).collect::<Vec<_>>().join(", ")}>
                { for p.segs.iter().map(|s| {
                    // Hundredths of a percent, at least 2.5 % so every part stays visible.
                    let pct = (s.bytes * 10_000 / scale).max(250);
                    html! {
                        <span class={classes!("seg", s.class)} style={format!("flex-basis:{}.{:02}%", pct / 100, pct % 100)}
                            title={format!("{} {} B", s.label, s.bytes)}>
                            <span class="seg-text">{ format!("{} {}", s.label, s.bytes) }</span>
                        </span>
                    }
                }) }
            </div>
            <span class="pr-total">{ format!("{total} B") }</span>
        </div>
    }
}

/// A reconstruction of the browser's upgrade request and the server's answer (sizes only
/// approximate: browsers add their own headers, cookies vary).
fn upgrade_estimate(tag: &str) -> (usize, usize, String) {
    let host = util::page_host();
    let origin = util::page_href();
    let origin = origin
        .find("://")
        .and_then(|i| {
            origin[i + 3..]
                .find('/')
                .map(|j| origin[..i + 3 + j].to_string())
        })
        .unwrap_or(origin);
    let langs = util::browser_languages();
    let accept_language = langs
        .iter()
        .enumerate()
        .map(|(i, lang)| {
            if i == 0 {
                lang.clone()
            } else {
                format!("{lang};q=0.{}", 10usize.saturating_sub(i).max(1))
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let request = format!(
        "GET /ws?tag={tag} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Connection: Upgrade\r\n\
         Pragma: no-cache\r\n\
         Cache-Control: no-cache\r\n\
         User-Agent: {ua}\r\n\
         Upgrade: websocket\r\n\
         Origin: {origin}\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: {accept_language}\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n",
        ua = util::user_agent(),
    );
    let response = "HTTP/1.1 101 Switching Protocols\r\n\
         connection: upgrade\r\n\
         upgrade: websocket\r\n\
         sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
         date: Tue, 25 Nov 2026 22:10:00 GMT\r\n\r\n";
    let text = format!("{request}{response}").replace("\r\n", "\n");
    (request.len(), response.len(), text)
}

/// TCP vs UDP, IPv4 vs IPv6, C/S vs B/S — the lesson's points.
#[component]
fn Concepts(props: &ConceptsProps) -> Html {
    let l = props.lang;
    html! {
        <div class="concepts">
            <div class="card concept">
                <h3><span class="tag tcp">{ "TCP" }</span>{ l.t("like a phone call", "像打电话") }</h3>
                <ul>
                    <li>{ l.t("Connection-oriented: a handshake first, a hang-up at the end.", "面向连接：先握手，最后挂断。") }</li>
                    <li>{ l.t("Reliable and ordered: lost bytes are resent, order is kept.", "可靠、有序：丢了会重传，顺序不会乱。") }</li>
                    <li>{ l.t("A byte stream, full duplex (a send buffer and a receive buffer).", "面向字节流，全双工（发送缓存与接收缓存）。") }</li>
                    <li>{ l.t("Flow and congestion control; slower to start.", "有流量控制与拥塞控制；发送前时延较大。") }</li>
                </ul>
                <p class="uses">{ l.t("Used by: web browsers, e-mail, file transfer — and both panels above.", "用于：Web 浏览器、电子邮件、文件传输——以及上面两个面板。") }</p>
            </div>
            <div class="card concept">
                <h3><span class="tag udp">{ "UDP" }</span>{ l.t("like a letter", "像寄信") }</h3>
                <ul>
                    <li>{ l.t("Connectionless: just send a datagram to an address.", "无连接：直接把数据报发往一个地址。") }</li>
                    <li>{ l.t("Best effort: may be lost, duplicated or reordered.", "尽最大努力：可能丢失、重复或乱序。") }</li>
                    <li>{ l.t("Message-oriented: one send, one datagram; no congestion control.", "面向报文：发一次就是一个数据报；无拥塞控制。") }</li>
                    <li>{ l.t("One-to-one, one-to-many, many-to-one, many-to-many.", "一对一、一对多、多对一、多对多。") }</li>
                </ul>
                <p class="uses">{ l.t("Used by: DNS, video streaming, voice over IP. Try: ", "用于：域名系统（DNS）、视频流、IP 语音（VoIP）。试试：") }<code>{ props.udp.clone() }</code></p>
            </div>
            <div class="card concept">
                <h3><span class="tag ip">{ "IP" }</span>{ "IPv4 · IPv6" }</h3>
                <ul>
                    <li>{ l.t("IPv4: 32-bit addresses, like 127.0.0.1; 20-byte header.", "IPv4：32 位地址，如 127.0.0.1；头部 20 字节。") }</li>
                    <li>{ l.t("IPv6: 128-bit addresses, like ::1; 40-byte header. It has existed for over 20 years.", "IPv6：128 位地址，如 ::1；头部 40 字节。它已经存在二十多年了。") }</li>
                    <li>{ l.t("Same sockets, another family: AF_INET vs AF_INET6. socklab serves both: --tcp [::1]:21566", "同样的套接字，不同的地址族：AF_INET 与 AF_INET6。socklab 两者都支持：--tcp [::1]:21566") }</li>
                </ul>
            </div>
            <div class="card concept">
                <h3><span class="tag bs">{ "B/S" }</span><span class="vs">{ l.t("vs", "与") }</span><span class="tag cs">{ "C/S" }</span></h3>
                <ul>
                    <li>{ l.t("C/S, client/server: a program you install talks to the server, here over a raw TCP socket.", "C/S（客户端/服务器）：安装一个客户端程序和服务器对话，这里用原始 TCP 套接字。") }</li>
                    <li>{ l.t("B/S, browser/server: the browser is the client; pages speak HTTP, and WebSocket for live data.", "B/S（浏览器/服务器）：浏览器就是客户端；网页说 HTTP，实时数据用 WebSocket。") }</li>
                    <li>{ l.t("HTTP is carried over TCP. HTTP/3 is the exception worth knowing: it runs over QUIC, over UDP.", "HTTP 是对 TCP 的封装。值得一提的例外是 HTTP/3：它跑在 QUIC 上，也就是 UDP 上。") }</li>
                    <li>{ l.t("Why the bridge? If any web page could open raw sockets, any site could talk to the printers and mail servers on your network.", "为什么需要桥？如果任何网页都能打开原始套接字，任何网站都能访问你局域网里的打印机和邮件服务器。") }</li>
                </ul>
            </div>
        </div>
    }
}

#[derive(Properties, PartialEq)]
struct ConceptsProps {
    lang: Lang,
    /// The command that sends a datagram to this server's UDP echo.
    udp: AttrValue,
}
