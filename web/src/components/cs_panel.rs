//! The C/S panel: every raw TCP/UDP/banner session the server is serving right now, with their
//! messages as they happen (from `/api/events`), and the commands that join them.

use std::rc::Rc;

use gloo_timers::callback::Timeout;
use socklab_protocol::{
    DEFAULT_BANNER_PORT, DEFAULT_ECHO_PORT, Direction, PREVIEW_CHARS, ServerInfo, SessionKind,
    SessionOpened, Transcript,
};
use yew::prelude::*;

use super::download::{self, Download};
use super::packets::{Ladder, PacketsView};
use super::widgets::{Command, CopyButton, fmt_bytes};
use crate::i18n::Lang;
use crate::state::Shared;
use crate::state::monitor::{
    Feed, MAX_MESSAGES, MessageView, MonitorState, SessionKey, SessionView,
};
use crate::state::packets::PacketLog;
use crate::state::transcript;
use crate::util;

/// Open sessions drawn at most (the rest are counted).
const MAX_SHOWN: usize = 40;
/// Message rows drawn in all cards together, about: each card shows its newest
/// `ROWS_IN_ALL / cards` (between [`MIN_ROWS`] and all it keeps), so a list of forty busy
/// clients draws a few rows each, not twenty.
const ROWS_IN_ALL: usize = 160;
/// Message rows a card shows at least.
const MIN_ROWS: usize = 3;
// A card shows between MIN_ROWS and the MAX_MESSAGES it keeps (`clamp` needs them in order).
const _: () = assert!(MIN_ROWS <= MAX_MESSAGES);
/// New cards one render adds, at most: when hundreds of clients connect (or the shown ones
/// close and hidden ones move up) at once, their cards are built a few per frame rather than
/// in one long task that would keep a keypress waiting.
const NEW_CARDS_PER_RENDER: usize = 8;
/// How soon the cards held back are drawn.
const REVEAL_MS: u32 = 32;

#[derive(Properties, PartialEq)]
pub struct CsPanelProps {
    pub lang: Lang,
    pub state: UseReducerHandle<MonitorState>,
    pub info: Option<ServerInfo>,
}

#[component]
pub fn CsPanel(props: &CsPanelProps) -> Html {
    let l = props.lang;
    let st = &props.state;
    // The session cards whose Packets view is open, by the view's key.
    let packets_open = use_state(Vec::<AttrValue>::new);
    let ontoggle = use_callback(packets_open.clone(), |key: AttrValue, open| {
        let mut keys = (**open).clone();
        match keys.iter().position(|k| *k == key) {
            Some(i) => drop(keys.swap_remove(i)),
            None => keys.push(key),
        }
        open.set(keys);
    });
    let (open, closed) = open_and_closed(st);
    let shown = use_paced_cards(&open);
    let cards = Cards {
        lang: l,
        st,
        info: props.info.as_ref(),
        capture: props.info.as_ref().map(|i| i.capture),
        packets_open: &packets_open,
        ontoggle: &ontoggle,
        rows: (ROWS_IN_ALL / (shown.len() + closed.len()).max(1)).clamp(MIN_ROWS, MAX_MESSAGES),
    };
    let hidden = open.len() - shown.len();
    let raw_open = open.iter().filter(|s| s.opened.via.is_none()).count();
    let browsers = st
        .browsers
        .values()
        .filter(|b| b.kind == SessionKind::Ws)
        .count();

    html! {
        <section class="panel cs" aria-labelledby="cs-title"
            data-packets={st.packets_feed.to_string()}>
            // A component of its own: the panel redraws on every message, the counts seldom.
            <CsHead lang={l} {raw_open} {browsers} />
            <JoinBox lang={l} info={props.info.clone()} />
            { feed_note(l, &st.feed) }
            { status_note(l, st) }
            { lagged_note(l, st.lagged) }
            if open.is_empty() && closed.is_empty() {
                { no_sessions(l) }
            } else {
                <ul class="sessions" id="cs-sessions" aria-live="polite">
                    // Each run of cards is a keyed list of its own (`{ for … }` would splice
                    // the cards into the `<ul>`'s unkeyed children, which Yew pairs from the
                    // end: a new card would then redraw every card).
                    { shown.iter().map(|s| cards.card(s)).collect::<Html>() }
                    if hidden > 0 {
                        <li class="more">{ format!("+{hidden} {}", l.t("more open sessions", "个会话未显示")) }</li>
                    }
                    { closed.iter().map(|s| cards.card(s)).collect::<Html>() }
                </ul>
            }
        </section>
    }
}

/// The sessions still open, and the closed ones in reverse order.
fn open_and_closed(st: &MonitorState) -> (Vec<&Rc<SessionView>>, Vec<&Rc<SessionView>>) {
    let open = st
        .sessions
        .values()
        .filter(|s| s.closed.is_none())
        .collect();
    let closed = st
        .sessions
        .values()
        .filter(|s| s.closed.is_some())
        .rev()
        .collect();
    (open, closed)
}

/// The open sessions to draw this render, paced by [`pace_new_cards`].
#[hook]
fn use_paced_cards<'a>(open: &[&'a Rc<SessionView>]) -> Vec<&'a Rc<SessionView>> {
    let drawn = use_mut_ref(Vec::<SessionKey>::new);
    let shown = pace_new_cards(open, &mut drawn.borrow_mut());
    let held_back = shown.len() < open.len().min(MAX_SHOWN);
    // While some are held back, another render follows soon to draw the next few.
    let redraw = use_force_update();
    use_effect(move || {
        let next = held_back.then(|| Timeout::new(REVEAL_MS, move || redraw.force_update()));
        move || drop(next)
    });
    shown
}

/// What the [`CsHead`] shows.
#[derive(Properties, PartialEq)]
struct CsHeadProps {
    lang: Lang,
    /// Raw clients connected now (not a bridge's upstream).
    raw_open: usize,
    /// Browsers connected over WebSocket.
    browsers: usize,
}

/// The panel's title, and how many raw clients and browsers are connected.
#[component]
fn CsHead(props: &CsHeadProps) -> Html {
    let l = props.lang;
    html! {
        <div class="panel-head">
            <div>
                <h2 id="cs-title"><span class="tag cs">{ "C/S" }</span>{ l.t("Raw socket clients", "原始套接字客户端") }</h2>
                <p class="sub">{ l.t("client → TCP → echo — no browser, no bridge", "客户端 → TCP → 回显——没有浏览器，没有桥") }</p>
            </div>
            <div class="counts">
                <span class="count" id="cs-count" title={l.t("raw clients connected now", "当前连接的原始客户端")}>
                    <b>{ props.raw_open }</b>{ l.t(" clients", " 个客户端") }
                </span>
                <span class="count muted" title={l.t("browsers connected over WebSocket (this one included)", "通过 WebSocket 连接的浏览器（包括本页面）")}>
                    <b>{ props.browsers }</b>{ l.t(" browsers", " 个浏览器") }
                </span>
            </div>
        </div>
    }
}

/// How the monitor feed's connection stands, when it is not live.
fn feed_note(l: Lang, feed: &Feed) -> Html {
    match feed {
        Feed::Live => html! {},
        Feed::Connecting => html! {
            <div class="feed-note">{ l.t("Connecting to the monitor feed…", "正在连接监视器…") }</div>
        },
        Feed::Down { .. } => html! {
            <div class="feed-note bad" role="status">{ l.t(
                "Monitor feed lost — retrying. The list below may be stale.",
                "监视器连接已断开——正在重试。下面的列表可能已过时。",
            ) }</div>
        },
    }
}

/// The monitor's own status, when it is not `ok`.
fn status_note(l: Lang, st: &MonitorState) -> Html {
    html! {
        if let Some(status) = st.status.as_ref().filter(|s| s.state != "ok") {
            <div class="feed-note" role="status">
                { format!("{} {}: {}", l.t("monitor", "监视器"), status.state, status.detail) }
            </div>
        }
    }
}

/// How many events the feed skipped because this page fell behind.
fn lagged_note(l: Lang, lagged: u64) -> Html {
    html! {
        if lagged > 0 {
            <div class="feed-note">{ format!("{} {}", lagged, l.t(
                "events skipped: this page could not keep up (the echo never waits for the monitor).",
                "个事件被跳过：本页面处理不过来（回显从不等待监视器）。",
            )) }</div>
        }
    }
}

/// The list's place before any raw client came: what to do to see one.
fn no_sessions(l: Lang) -> Html {
    html! {
        <div class="sessions empty-state" id="cs-sessions">
            <svg viewBox="0 0 64 48" width="64" height="48" aria-hidden="true" class="empty-art">
                <rect x="2" y="4" width="60" height="40" rx="6" fill="none" stroke="currentColor" stroke-width="3" />
                <path d="M12 18l8 6-8 6M26 32h14" fill="none" stroke="currentColor" stroke-width="3" stroke-linecap="round" stroke-linejoin="round" />
            </svg>
            <p><b>{ l.t("No raw clients yet.", "还没有原始客户端。") }</b></p>
            <p>{ l.t(
                "Open a terminal, run one of the commands above, type a line and press Enter: it appears here as it happens.",
                "打开终端，运行上面的任意一条命令，输入一行并回车：它会实时出现在这里。",
            ) }</p>
        </div>
    }
}

/// The open sessions to draw: the first [`MAX_SHOWN`], except that at most
/// [`NEW_CARDS_PER_RENDER`] of them may be new since the last render (`drawn`, updated).
fn pace_new_cards<'a>(
    open: &[&'a Rc<SessionView>],
    drawn: &mut Vec<SessionKey>,
) -> Vec<&'a Rc<SessionView>> {
    let mut new = 0;
    let shown: Vec<&Rc<SessionView>> = open
        .iter()
        .copied()
        .filter(|s| {
            let old = drawn
                .iter()
                .any(|(instance, id)| *id == s.opened.id && *instance == s.opened.instance);
            new += usize::from(!old);
            old || new <= NEW_CARDS_PER_RENDER
        })
        .take(MAX_SHOWN)
        .collect();
    *drawn = shown
        .iter()
        .map(|s| (s.opened.instance.clone(), s.opened.id))
        .collect();
    shown
}

/// What every session card of one render draws from.
struct Cards<'a> {
    lang: Lang,
    st: &'a MonitorState,
    info: Option<&'a ServerInfo>,
    /// Whether the server captures; `None` until `/api/info` answered.
    capture: Option<bool>,
    /// The keys of the Packets views that are open.
    packets_open: &'a [AttrValue],
    ontoggle: &'a Callback<AttrValue>,
    /// How many of its newest messages each card shows.
    rows: usize,
}

impl Cards<'_> {
    /// One session's card.
    fn card(&self, s: &Rc<SessionView>) -> Html {
        let o = &s.opened;
        let mine = self
            .st
            .my_ws
            .as_ref()
            .is_some_and(|(instance, id)| o.via == Some(*id) && &o.instance == instance);
        // Only the card whose session (or Packets view) changed redraws: each is a keyed
        // component whose props compare its session by pointer.
        html! {
            <SessionCard key={format!("{}/{}", o.instance.as_deref().unwrap_or(""), o.id)}
                lang={self.lang} session={s.clone()} {mine} packets={self.packets(o)}
                rows={self.rows} />
        }
    }

    /// What the session's Packets view needs, where it has one.
    fn packets(&self, o: &SessionOpened) -> Option<CardPackets> {
        // Packet events carry no instance: only this instance's own sessions have them.
        let local = self
            .info
            .map_or(o.instance.is_none(), |i| i.instance == o.instance);
        local.then(|| {
            let key_id = AttrValue::from(format!("cs-{}", o.id));
            CardPackets {
                capture: self.capture,
                log: self.st.packets.of(o.id),
                open: self.packets_open.contains(&key_id),
                key_id,
                ontoggle: self.ontoggle.clone(),
            }
        })
    }
}

/// What a card's Packets view needs (only this instance's own sessions have one).
#[derive(Clone, PartialEq)]
struct CardPackets {
    /// Whether the server captures; `None` until `/api/info` answered.
    capture: Option<bool>,
    /// The session's packets, once any came.
    log: Option<Shared<PacketLog>>,
    /// The view's key (`cs-<id>`), and whether the view is open.
    key_id: AttrValue,
    open: bool,
    ontoggle: Callback<AttrValue>,
}

#[derive(Properties)]
struct SessionCardProps {
    lang: Lang,
    session: Rc<SessionView>,
    /// Whether it is this page's own upstream (through the bridge).
    mine: bool,
    packets: Option<CardPackets>,
    /// How many of its newest messages to show.
    rows: usize,
}

impl PartialEq for SessionCardProps {
    /// A session's view is replaced whenever it changes: the same one draws the same card.
    fn eq(&self, other: &Self) -> bool {
        self.lang == other.lang
            && Rc::ptr_eq(&self.session, &other.session)
            && self.mine == other.mine
            && self.packets == other.packets
            && self.rows == other.rows
    }
}

/// One session: kind, id, addresses, byte counts, its newest messages, how it closed, and its
/// packets (on demand).
#[component]
fn SessionCard(props: &SessionCardProps) -> Html {
    let (l, s, mine) = (props.lang, &props.session, props.mine);
    // The Download builds from the card's newest view when pressed, so its props stay equal
    // while messages come and it is not drawn again for each one.
    let latest = use_mut_ref(|| Rc::clone(s));
    *latest.borrow_mut() = Rc::clone(s);
    let build = {
        let latest = Rc::clone(&latest);
        use_callback((), move |(), ()| {
            transcript::cs_transcript(&latest.borrow(), &download::iso_now())
        })
    };
    let o = &s.opened;
    // The data- attributes carry the same counts the text shows, unrounded, for tests and tools.
    let c = &s.counts;
    let kind = kind_badge(o.kind);
    let class = classes!(
        "session",
        mine.then_some("mine"),
        o.via.is_some().then_some("bridged"),
        s.closed.is_some().then_some("closed")
    );
    html! {
        <li {class} data-session-id={o.id.to_string()} data-kind={o.kind.as_str()}
            data-instance={o.instance.clone()}
            data-bytes-in={c.bytes_in.to_string()} data-bytes-out={c.bytes_out.to_string()}>
            { card_head(l, s, mine, kind) }
            if !s.messages.is_empty() {
                <ol class="s-msgs">
                    // Keyed by the message's place modulo the rows shown: one new message
                    // moves the oldest row to the end and rewrites just that one, and a burst
                    // of many rewrites the rows in place instead of building new ones.
                    { s.messages.iter().skip(s.messages.len().saturating_sub(props.rows))
                        .map(|m| message_row(l, m, props.rows)).collect::<Html>() }
                </ol>
            }
            if !s.messages.is_empty() {
                { download_view(l, s, build) }
            }
            if let Some(c) = &s.closed {
                <div class="s-closed">
                    { format!("{} {} · {}", l.t("closed", "已关闭"), util::clock_of(&c.at), c.reason) }
                </div>
            }
            if let Some(p) = &props.packets {
                <PacketsView lang={l} capture={p.capture} key_id={p.key_id.clone()}
                    open={p.open} ontoggle={p.ontoggle.clone()}
                    ladders={vec![Ladder {
                        id: o.id,
                        title: kind.1.into(),
                        log: p.log.clone(),
                    }]} />
            }
        </li>
    }
}

/// A session kind's badge: its CSS classes and its name.
fn kind_badge(kind: SessionKind) -> (&'static str, &'static str) {
    match kind {
        SessionKind::Tcp => ("kind tcp", "TCP"),
        SessionKind::Udp => ("kind udp", "UDP"),
        SessionKind::Banner => ("kind banner", "BANNER"),
        SessionKind::Ws => ("kind ws", "WS"),
        SessionKind::Wt => ("kind wt", "WT"),
    }
}

/// A card's first line: kind, id, instance, addresses, whose it is, and the byte counts.
fn card_head(l: Lang, s: &SessionView, mine: bool, kind: (&'static str, &'static str)) -> Html {
    let (kind_class, kind_text) = kind;
    let (o, c) = (&s.opened, &s.counts);
    html! {
        <div class="s-head">
            <span class={kind_class}>{ kind_text }</span>
            <b class="s-id">{ format!("#{}", o.id) }</b>
            if let Some(instance) = &o.instance {
                <span class="s-instance" title={l.t("the server instance that serves it", "为它服务的服务器实例")}>{ format!("@{instance}") }</span>
            }
            <code class="s-addr" title={l.t("client → server", "客户端 → 服务器")}>{ format!("{} → {}", o.peer, o.local) }</code>
            { role_badge(l, mine, o.via) }
            <span class="spacer"></span>
            <span class="s-bytes" title={format!("{}: {} / {}",
                l.t("bytes from the client / to the client", "来自客户端 / 发往客户端的字节数"),
                c.bytes_in, c.bytes_out)}>
                { format!("↑{} ↓{}", fmt_bytes(c.bytes_in), fmt_bytes(c.bytes_out)) }
            </span>
        </div>
    }
}

/// Whose session it is, when a bridge opened it: this page's, or another browser's.
fn role_badge(l: Lang, mine: bool, via: Option<u64>) -> Html {
    match (mine, via) {
        (true, _) => {
            html! { <span class="role mine">{ l.t("this page, via the bridge", "本页面（经由桥）") }</span> }
        }
        (false, Some(ws)) => html! {
            <span class="role via">{ format!("{} #{ws}", l.t("bridge upstream of browser", "桥的上游，浏览器")) }</span>
        },
        (false, None) => html! {},
    }
}

/// One message of a session card, of `rows` shown.
fn message_row(l: Lang, m: &MessageView, rows: usize) -> Html {
    let (cls, arrow, who) = match m.dir {
        Direction::In => ("in", "→", l.t("client → server", "客户端 → 服务器")),
        Direction::Out => (
            "out",
            "←",
            l.t("server → client (reply)", "服务器 → 客户端（回复）"),
        ),
    };
    html! {
        <li class={cls} key={m.n % rows.max(1) as u64}>
            <span class="arrow" title={who} aria-label={who}>{ arrow }</span>
            <time>{ m.clock.clone() }</time>
            <span class="msg">{ show_controls(&m.preview) }</span>
            <span class="meta">{ fmt_bytes(m.bytes) }</span>
        </li>
    }
}

/// The card's Download: what the monitor showed of the session, as `build` makes it.
fn download_view(l: Lang, s: &SessionView, build: Callback<(), Transcript>) -> Html {
    let note = match l {
        Lang::En => format!(
            "what the monitor showed: the newest {MAX_MESSAGES} messages, text cut at {PREVIEW_CHARS} characters; sizes exact"
        ),
        Lang::Zh => format!(
            "监视器所显示的内容：最新 {MAX_MESSAGES} 条消息，文本截至 {PREVIEW_CHARS} 个字符；字节数准确"
        ),
    };
    let name = format!("socklab-cs-{}-{}", s.opened.kind.as_str(), s.opened.id);
    html! { <Download lang={l} {name} {note} {build} /> }
}

/// Shows control characters as escapes, `hi\n`: the unit the echo answers is a line, and the
/// banner ends in `\r\n`.
fn show_controls(preview: &str) -> Html {
    let mut parts: Vec<Html> = Vec::new();
    let mut run = String::new();
    for c in preview.chars() {
        let escape = match c {
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            _ => {
                run.push(c);
                continue;
            }
        };
        if !run.is_empty() {
            parts.push(html! { { std::mem::take(&mut run) } });
        }
        parts.push(html! { <span class="ctl">{ escape }</span> });
    }
    if !run.is_empty() {
        parts.push(html! { { run } });
    }
    parts.into_iter().collect()
}

/// The host and port to show in join commands for one listener address: an unspecified
/// address (`0.0.0.0`, `[::]`) is shown as the host the page was loaded from.
fn join_target(addr: Option<&String>, default_port: u16) -> (String, u16) {
    match addr.and_then(|a| ip_and_port(a)) {
        Some((ip, port)) if ip != "0.0.0.0" && ip != "::" => (ip.to_string(), port),
        Some((_, port)) => (fallback_host(), port),
        None => (fallback_host(), default_port),
    }
}

/// The IP address and port of a listener address as the server writes it (Rust's
/// `SocketAddr` display: `0.0.0.0:21566`, `[::1]:21566`, `[fe80::1%2]:21566`, whose scope is
/// left out); `None` for anything else. Not a full address parser (`std::net`'s costs the
/// page some 2 KB): it checks the characters and the brackets, and the server writes
/// addresses in their one canonical form.
fn ip_and_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = decimal(port)?;
    let ip = match host.strip_prefix('[') {
        Some(v6) => {
            let v6 = v6.strip_suffix(']')?;
            let v6 = v6.split_once('%').map_or(v6, |(ip, _scope)| ip);
            (v6.contains(':')
                && v6
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.'))
            .then_some(v6)?
        }
        None => (host.split('.').count() == 4
            && host
                .split('.')
                .all(|n| (n == "0" || !n.starts_with('0')) && decimal::<u8>(n).is_some()))
        .then_some(host)?,
    };
    Some((ip, port))
}

/// Plain decimal digits only: `str::parse` also takes a leading `+`, which addresses do not.
fn decimal<T: std::str::FromStr>(digits: &str) -> Option<T> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn fallback_host() -> String {
    let h = util::page_hostname();
    if h.is_empty() {
        "127.0.0.1".into()
    } else {
        h.trim_matches(['[', ']']).to_string()
    }
}

/// `host:port`, bracketing IPv6.
fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

#[derive(Properties, PartialEq)]
struct JoinBoxProps {
    lang: Lang,
    info: Option<ServerInfo>,
}

/// Copyable commands that join the C/S side, with the lesson's client.py.
#[component]
fn JoinBox(props: &JoinBoxProps) -> Html {
    let l = props.lang;
    let info = props.info.as_ref();
    let (host, port) = join_target(info.and_then(|i| i.tcp.first()), DEFAULT_ECHO_PORT);
    let udp = info
        .and_then(|i| i.udp.first())
        .map(|a| join_target(Some(a), DEFAULT_ECHO_PORT));
    let banner = info
        .and_then(|i| i.banner.first())
        .map(|a| join_target(Some(a), DEFAULT_BANNER_PORT));
    let client_py = client_py(&host, port);
    html! {
        <div class="join">
            <div class="join-title">{ l.t("Join from a terminal", "在终端中加入") }</div>
            <Command lang={l} cmd={format!("nc {host} {port}")}
                note={l.t("raw TCP: type a line, press Enter", "原始 TCP：输入一行，回车")} />
            <Command lang={l} cmd={format!("target/release/socklab-client {}", host_port(&host, port))}
                note={l.t("the lesson's >> client, in Rust (from the project's folder; `cargo xtask run` builds it)",
                          "课程里的 >> 客户端，Rust 版（在项目目录中运行；`cargo xtask run` 会构建它）")} />
            <Command lang={l} cmd={"python3 client.py".to_string()}
                note={l.t("the lesson's client.py (below)", "课程里的 client.py（见下）")} />
            <details class="more-cmds">
                <summary>{ l.t("client.py, UDP and the banner", "client.py、UDP 与欢迎横幅") }</summary>
                <div class="code-block">
                    <div class="code-head">
                        <span>{ "client.py" }</span>
                        <CopyButton lang={l} text={client_py.clone()} label="client.py" />
                    </div>
                    <pre><code>{ client_py }</code></pre>
                </div>
                if let Some((h, p)) = udp {
                    <Command lang={l} cmd={format!("nc -u {h} {p}")}
                        note={l.t("UDP: each line is one datagram, no connection", "UDP：每行一个数据报，没有连接")} />
                }
                if let Some((h, p)) = banner {
                    <Command lang={l} cmd={format!("nc {h} {p}")}
                        note={l.t("the welcome banner: one message, then close", "欢迎横幅：发一条消息就关闭")} />
                }
            </details>
        </div>
    }
}

/// The lesson's client.py, pointed at this server.
fn client_py(host: &str, port: u16) -> String {
    let family = if host.contains(':') {
        "AF_INET6"
    } else {
        "AF_INET"
    };
    format!(
        "from socket import *\n\
         \n\
         HOST = '{host}'  # the server's IP\n\
         PORT = {port}  # the echo port\n\
         BUFSIZ = 1024\n\
         ADDR = (HOST, PORT)\n\
         \n\
         tcpCliSock = socket({family}, SOCK_STREAM)\n\
         tcpCliSock.connect(ADDR)\n\
         while True:\n\
         \x20   data = input('>>').strip()\n\
         \x20   if not data:\n\
         \x20       break\n\
         \x20   tcpCliSock.send(data.encode('utf-8'))\n\
         \x20   data = tcpCliSock.recv(BUFSIZ)\n\
         \x20   if not data:\n\
         \x20       break\n\
         \x20   print(data.decode('utf-8'))\n\
         tcpCliSock.close()\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_addresses_read_as_ip_and_port() {
        assert_eq!(ip_and_port("0.0.0.0:21566"), Some(("0.0.0.0", 21566)));
        assert_eq!(ip_and_port("127.0.0.1:8080"), Some(("127.0.0.1", 8080)));
        assert_eq!(ip_and_port("[::]:21566"), Some(("::", 21566)));
        assert_eq!(ip_and_port("[::1]:1"), Some(("::1", 1)));
        assert_eq!(
            ip_and_port("[::ffff:10.0.0.1]:7"),
            Some(("::ffff:10.0.0.1", 7))
        );
        assert_eq!(ip_and_port("[fe80::1%2]:7"), Some(("fe80::1", 7)));
        // What `SocketAddr` refuses.
        for bad in [
            "",
            "localhost:80",
            "127.0.0.1",
            "127.0.0.1:65536",
            "127.0.0.1:x",
            "1.2.3:80",
            "1.2.3.256:80",
            "::1:80",
            "[::1:80",
            "[1.2.3.4]:80",
            "[]:80",
            "+1.2.3.4:80",
            "1.2.3.4:+80",
            "01.2.3.4:80",
            "1.2..4:80",
        ] {
            assert_eq!(ip_and_port(bad), None, "{bad}");
            assert!(bad.parse::<std::net::SocketAddr>().is_err(), "{bad}");
        }
    }
}
