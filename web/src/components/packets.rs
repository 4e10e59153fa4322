//! The Packets view: a session's real packets (`--capture`) as a ladder between client and
//! server — SYN, SYN-ACK, ACK, PSH/ACK len N, FIN, RST; a UDP session's datagrams with no
//! handshake — each row opening into its layers (IP header, TCP/UDP header, payload as text
//! and hex), and the session's `.pcap` for Wireshark.
//!
//! Closed, it is one button (which views are open, the panel keeps): the ladder is drawn only while the view is open, and it shows
//! at most the packets the state keeps (`state::packets::KEEP`), so a burst costs little.

use socklab_protocol::{Direction, PacketEvent};
use yew::prelude::*;

use crate::i18n::Lang;
use crate::state::Shared;
use crate::state::packets::{self, PacketLog};
use crate::util;

/// One session to draw.
#[derive(Clone, PartialEq)]
pub struct Ladder {
    /// The session's id.
    pub id: u64,
    /// What it is, e.g. "WebSocket (browser → bridge)".
    pub title: AttrValue,
    /// Its packets, once any came.
    pub log: Option<Shared<PacketLog>>,
}

#[derive(Properties, PartialEq)]
pub struct PacketsProps {
    pub lang: Lang,
    /// Whether the server captures packets; `None` until `/api/info` answered.
    pub capture: Option<bool>,
    /// The sessions shown, in order (the B/S side shows two: its WebSocket and the bridge's
    /// TCP hop).
    pub ladders: Vec<Ladder>,
    /// Names the view's region (unique on the page).
    pub key_id: AttrValue,
    /// Whether the ladder is shown. Kept by the panel, not here: a session card may be drawn
    /// anew when the list around it changes, and an open view must stay open.
    pub open: bool,
    /// The Packets button was pressed (gives `key_id`).
    pub ontoggle: Callback<AttrValue>,
}

#[component]
pub fn PacketsView(props: &PacketsProps) -> Html {
    let l = props.lang;
    let open = props.open;
    let toggle = {
        let (ontoggle, key) = (props.ontoggle.clone(), props.key_id.clone());
        Callback::from(move |_: MouseEvent| ontoggle.emit(key.clone()))
    };
    let region = format!("packets-{}", props.key_id);
    html! {
        <div class="pkts" data-packets-for={props.key_id.clone()}>
            <button type="button" class="btn ghost small pkts-toggle" onclick={toggle}
                aria-expanded={open.to_string()} aria-controls={region.clone()}>
                { l.t("Packets", "数据包") }
            </button>
            if open {
                <div class="pkts-body" id={region}>
                    { body(l, props.capture, &props.ladders) }
                </div>
            }
        </div>
    }
}

fn body(l: Lang, capture: Option<bool>, ladders: &[Ladder]) -> Html {
    match capture {
        None => {
            html! { <p class="muted small">{ l.t("Asking the server…", "正在询问服务器…") }</p> }
        }
        Some(false) => html! {
            <div class="pkts-off" role="note">
                <p>{ l.t(
                    "Packet capture is off on this server. To see the real packets, allow the server to open a raw socket, then start it with --capture:",
                    "本服务器未开启抓包。要看到真实的数据包，先允许服务器打开原始套接字，再用 --capture 启动：",
                ) }</p>
                <pre><code>{ "sudo setcap cap_net_raw+ep target/release/socklab-server\ntarget/release/socklab-server --capture" }</code></pre>
            </div>
        },
        Some(true) => ladders.iter().map(|d| ladder(l, d)).collect(),
    }
}

/// One session's ladder and its download link.
fn ladder(l: Lang, d: &Ladder) -> Html {
    let href = format!("api/sessions/{}/pcap", d.id);
    let rows = d.log.as_ref().map(|log| &log.packets);
    let total = d.log.as_ref().map_or(0, |log| log.total);
    let shown = rows.map_or(0, |r| r.len());
    html! {
        <div class="ladder" data-session-id={d.id.to_string()}>
            <div class="ladder-head">
                <b>{ format!("{} #{}", d.title, d.id) }</b>
                // An empty `download`: the file keeps the server's name (`socklab-<kind>-<id>.pcap`).
                <a class="pcap" href={href} download="">
                    { l.t("Download .pcap", "下载 .pcap") }
                </a>
            </div>
            <div class="ladder-ends" aria-hidden="true">
                <span>{ l.t("client", "客户端") }</span><span>{ l.t("server", "服务器") }</span>
            </div>
            if shown == 0 {
                <p class="muted small">{ l.t(
                    "No packets since this view subscribed (earlier ones are in the .pcap).",
                    "订阅以来还没有数据包（更早的在 .pcap 里）。",
                ) }</p>
            } else {
                <ol class="ladder-rows">
                    { for rows.into_iter().flatten().map(|p| row(l, p)) }
                </ol>
            }
            if total > shown as u64 {
                <p class="muted small">{ format!("{} {}", total - shown as u64, l.t(
                    "earlier packets not shown (the .pcap has the handshake and the newest).",
                    "个更早的数据包未显示（.pcap 里有握手和最新的）。",
                )) }</p>
            }
        </div>
    }
}

/// One packet: an arrow with its name, opening into its layers.
fn row(l: Lang, p: &PacketEvent) -> Html {
    let name = packets::label(p);
    let (cls, arrow, who) = match p.dir {
        Direction::In => ("in", "→", l.t("client → server", "客户端 → 服务器")),
        Direction::Out => ("out", "←", l.t("server → client", "服务器 → 客户端")),
    };
    // The server writes the hex; should it ever be bad, the row shows no payload bytes.
    let bytes = util::parse_hex(&p.payload_hex).unwrap_or_default();
    let transport = if p.proto == "tcp" { "TCP" } else { "UDP" };
    let wire = u64::from(p.ip_header) + u64::from(p.transport_header) + u64::from(p.payload_len);
    html! {
        <li class={classes!("pkt", cls)} data-label={name.clone()} data-len={p.payload_len.to_string()}>
            <details>
                <summary>
                    <span class="arrow" aria-hidden="true">{ arrow }</span>
                    <span class="visually-hidden">{ who }</span>
                    <span class="pkt-name">{ name }</span>
                    <span class="meta">{ format!("{wire} B · {}", util::clock_of(&p.at)) }</span>
                </summary>
                <ul class="layers">
                    <li class="l-ip">{ format!("IPv{} {} {} B", p.ip, l.t("header", "首部"), p.ip_header) }</li>
                    <li class="l-tr">{ format!("{transport} {} {} B", l.t("header", "首部"), p.transport_header) }
                        if let (Some(seq), Some(ack)) = (p.seq, p.ack) {
                            { format!(" · seq {seq} · ack {ack}") }
                        }
                        if let Some(w) = p.window {
                            { format!(" · {} {w}", l.t("window", "窗口")) }
                        }
                    </li>
                    <li class="l-pay">{ format!("{} {} B", l.t("payload", "载荷"), p.payload_len) }
                        if !bytes.is_empty() {
                            <code class="pay-text">{ packets::as_text(&bytes) }</code>
                            <code class="pay-hex">{ packets::spaced_hex(&bytes) }</code>
                            if (bytes.len() as u64) < u64::from(p.payload_len) {
                                <span class="muted">{ format!("({} {} B)", l.t("first", "前"), bytes.len()) }</span>
                            }
                        }
                    </li>
                </ul>
            </details>
        </li>
    }
}
