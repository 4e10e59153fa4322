//! The B/S panel: this browser's own session through the WebSocket bridge.
//!
//! Connection bar (status, time connected, disconnect/reconnect), the upstream TCP session the
//! bridge opened for this page, the close code in words, the message log with sizes and
//! round-trip times, and the input (Enter sends, Shift+Enter new line, ↑ recalls).

use std::rc::Rc;

use socklab_protocol::ServerInfo;
use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::widgets::{Countdown, Elapsed, fmt_bytes, fmt_ms};
use crate::i18n::{Lang, close_code_hint, close_code_name};
use crate::services::bridge::BridgeHandle;
use crate::state::bridge::{Body, BridgeState, CloseInfo, Dir, Entry, Note, Status, rtt_summary};
use crate::state::monitor::SessionView;
use crate::util;

#[derive(Properties, PartialEq)]
pub struct BsPanelProps {
    pub lang: Lang,
    pub state: UseReducerHandle<BridgeState>,
    pub bridge: BridgeHandle,
    /// This page's upstream TCP session, once the monitor has shown it.
    pub upstream: Option<Rc<SessionView>>,
    pub info: Option<ServerInfo>,
}

#[component]
pub fn BsPanel(props: &BsPanelProps) -> Html {
    let l = props.lang;
    let state = &props.state;
    let input = use_state(String::new);
    // Binary mode: the input is hex, sent as one binary message, byte for byte.
    let hex_mode = use_state(|| false);
    // The log filter, as typed (matching is case-insensitive).
    let filter = use_state(String::new);
    // Sent messages for ↑/↓ recall, and where in them we are.
    let history = use_mut_ref(Vec::<String>::new);
    let history_pos = use_mut_ref(|| 0usize);
    let log_ref = use_node_ref();
    // Follow new messages unless the user scrolled up to read.
    let stick = use_mut_ref(|| true);

    {
        let log_ref = log_ref.clone();
        let stick = stick.clone();
        let last = state.log.back().map(|e| e.seq);
        use_effect_with(last, move |_| {
            if *stick.borrow()
                && let Some(el) = log_ref.cast::<web_sys::Element>()
            {
                util::scroll_to_bottom(&el);
            }
        });
    }
    let onscroll = {
        let stick = stick.clone();
        Callback::from(move |e: Event| {
            if let Some(el) = util::event_element(e.target()) {
                *stick.borrow_mut() = util::is_at_bottom(&el);
            }
        })
    };

    let send = {
        let input = input.clone();
        let hex_mode = hex_mode.clone();
        let bridge = props.bridge.clone();
        let history = history.clone();
        let history_pos = history_pos.clone();
        let stick = stick.clone();
        Callback::from(move |()| {
            let text = (*input).clone();
            let sent = if *hex_mode {
                match util::parse_hex(&text) {
                    Ok(bytes) if !bytes.is_empty() => bridge.send_binary(&bytes),
                    // The hint under the input says what is wrong.
                    _ => return,
                }
            } else if text.is_empty() {
                return;
            } else {
                bridge.send(&text)
            };
            if sent {
                let mut h = history.borrow_mut();
                if h.last() != Some(&text) {
                    h.push(text);
                }
                *history_pos.borrow_mut() = h.len();
                *stick.borrow_mut() = true;
                input.set(String::new());
            }
        })
    };
    let oninput = {
        let input = input.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(area) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlTextAreaElement>().ok())
            {
                input.set(area.value());
            }
        })
    };
    let onkeydown = {
        let input = input.clone();
        let send = send.clone();
        let history = history.clone();
        let history_pos = history_pos.clone();
        Callback::from(move |e: KeyboardEvent| {
            // While an input method composes (pinyin), Enter picks a word: leave it alone.
            if e.is_composing() || e.key_code() == 229 {
                return;
            }
            match e.key().as_str() {
                "Enter" if !e.shift_key() => {
                    e.prevent_default();
                    send.emit(());
                }
                "ArrowUp" if !input.contains('\n') => {
                    let h = history.borrow();
                    let mut pos = history_pos.borrow_mut();
                    if *pos > 0 {
                        e.prevent_default();
                        *pos -= 1;
                        input.set(h[*pos].clone());
                    }
                }
                "ArrowDown" if !input.contains('\n') => {
                    let h = history.borrow();
                    let mut pos = history_pos.borrow_mut();
                    if *pos < h.len() {
                        e.prevent_default();
                        *pos += 1;
                        input.set(h.get(*pos).cloned().unwrap_or_default());
                    }
                }
                _ => {}
            }
        })
    };
    let onsubmit = {
        let send = send.clone();
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            send.emit(());
        })
    };
    let disconnect = {
        let bridge = props.bridge.clone();
        Callback::from(move |_: MouseEvent| bridge.disconnect())
    };
    let reconnect = {
        let bridge = props.bridge.clone();
        Callback::from(move |_: MouseEvent| bridge.reconnect_now())
    };
    let onfilter = {
        let filter = filter.clone();
        Callback::from(move |e: InputEvent| {
            if let Some(field) = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            {
                filter.set(field.value());
            }
        })
    };
    let query = filter.trim().to_lowercase();
    let shown: Vec<&Rc<Entry>> = state.log.iter().filter(|e| e.matches(&query)).collect();
    let clear = {
        let state = state.clone();
        Callback::from(move |_: MouseEvent| {
            state.dispatch(crate::state::bridge::BridgeAction::ClearLog)
        })
    };

    let (badge_class, badge_text) = match &state.status {
        Status::Connecting => ("badge wait", l.t("connecting", "连接中")),
        Status::Open => ("badge ok", l.t("open", "已连接")),
        Status::Closing => ("badge wait", l.t("closing", "关闭中")),
        Status::Waiting { .. } => ("badge bad", l.t("closed · retrying", "已断开 · 将重连")),
        Status::Closed => ("badge bad", l.t("closed", "已断开")),
    };
    let is_open = state.status == Status::Open;
    let max_message = props.info.as_ref().map(|i| i.max_message);
    let hex = hex_mode.then(|| util::parse_hex(&input));
    let payload_len = match &hex {
        Some(Ok(bytes)) => bytes.len(),
        Some(Err(_)) => 0,
        None => input.len(),
    };
    let too_big = max_message.is_some_and(|m| payload_len > m);
    let can_send = is_open && payload_len > 0;
    let set_mode = |hex: bool| {
        let hex_mode = hex_mode.clone();
        Callback::from(move |_: MouseEvent| hex_mode.set(hex))
    };

    let conn_bar = html! {
        <div class="conn-bar">
            <span class={badge_class} id="bs-status" data-status={status_key(&state.status)}>
                <span class="dot" aria-hidden="true"></span>{ badge_text }
            </span>
            <code class="url" title={l.t("WebSocket URL", "WebSocket 地址")}>{ "/ws" }</code>
            {
                match (&state.status, state.opened_at_ms) {
                    (Status::Open, Some(t)) => html! {
                        <span class="muted small">{ l.t("connected for ", "已连接 ") }<Elapsed since_ms={t} /></span>
                    },
                    (Status::Waiting { retry_at_ms, .. }, _) => html! {
                        <span class="muted small">{ l.t("retry in ", "重连倒计时 ") }<Countdown since_ms={*retry_at_ms} /></span>
                    },
                    _ => html! {},
                }
            }
            <span class="spacer"></span>
            if is_open || state.status == Status::Connecting {
                <button class="btn ghost small" id="bs-disconnect" onclick={disconnect}>
                    { l.t("Disconnect", "断开") }
                </button>
            } else {
                <button class="btn small" id="bs-reconnect" onclick={reconnect}
                    disabled={state.status == Status::Closing}>
                    { l.t("Reconnect now", "立即重连") }
                </button>
            }
        </div>
    };

    let upstream = match (&props.upstream, is_open) {
        (Some(u), _) => html! {
            <div class="upstream" id="bs-upstream">
                <span class="kind tcp">{ "TCP" }</span>
                <span>
                    { l.t("Your upstream: bridge session ", "你的上游：桥的会话 ") }
                    <b>{ format!("#{}", u.opened.id) }</b>
                    { " " }<code>{ format!("{} → {}", u.opened.peer, u.opened.local) }</code>
                    <span class="muted">{ l.t(" — highlighted on the C/S side", " ——在 C/S 一侧高亮显示") }</span>
                </span>
            </div>
        },
        (None, true) => html! {
            <div class="upstream muted" id="bs-upstream">
                { l.t("Finding this page's upstream TCP session on the monitor…", "正在监视器中查找本页面的上游 TCP 会话…") }
            </div>
        },
        (None, false) => html! {},
    };

    // The last close stays visible while reconnecting, so its reason can be read.
    let close_info = match &state.last_close {
        Some(c) if !is_open => close_box(l, c, state.connections == 0),
        _ => html! {},
    };

    let stats = {
        let rtt = rtt_summary(&state.rtts);
        html! {
            <div class="stats" aria-live="off">
                <span>{ l.t("sent ", "已发送 ") }<b>{ state.sent_total }</b></span>
                <span>{ l.t("received ", "已接收 ") }<b>{ state.received_total }</b></span>
                if let Some((_, p50, max)) = rtt {
                    <span title={l.t("round-trip time: sent → reply", "往返时间：发送 → 收到回复")}>
                        { "RTT p50 " }<b>{ fmt_ms(p50) }</b>{ " · max " }<b>{ fmt_ms(max) }</b>
                    </span>
                }
                <span class="spacer"></span>
                <input type="search" class="filter" id="bs-filter" value={(*filter).clone()}
                    oninput={onfilter} placeholder={l.t("Filter", "筛选")}
                    aria-label={l.t("Show only messages containing", "只显示包含此文字的消息")} />
                if !query.is_empty() {
                    <span class="muted small" id="bs-filter-count">
                        { format!("{}/{}", shown.len(), state.log.len()) }
                    </span>
                }
                <button class="btn ghost small" onclick={clear}
                    disabled={state.log.is_empty()}>{ l.t("Clear", "清空") }</button>
            </div>
        }
    };

    let never_connected =
        state.connections == 0 && state.last_close.as_ref().is_some_and(|c| c.code == 1006);
    let log = if never_connected && !is_open {
        html! {
            <div class="log empty-state" id="bs-log">
                <div class="empty-icon" aria-hidden="true">{ "⚡" }</div>
                <p><b>{ l.t("Can't reach the server.", "连不上服务器。") }</b></p>
                <p>{ l.t("Start it, and this page reconnects by itself:", "启动它，本页面会自动重连：") }</p>
                <code>{ "cargo run -p socklab-server" }</code>
            </div>
        }
    } else {
        html! {
            <ol class="log" id="bs-log" ref={log_ref} onscroll={onscroll} tabindex="0"
                aria-label={l.t("Message log", "消息记录")} aria-live="polite">
                if state.log.is_empty() {
                    <li class="log-hint">{ l.t(
                        "Type a message below and press Enter. The reply comes back stamped with the server's time: [time]:message.",
                        "在下面输入一条消息并按回车。回复会带上服务器时间：[时间]:消息。",
                    ) }</li>
                }
                { for shown.iter().map(|e| entry_view(l, e)) }
            </ol>
        }
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
            { conn_bar }
            { upstream }
            { close_info }
            { log }
            { stats }
            <form class="composer" onsubmit={onsubmit}>
                <div class="seg-toggle mode" role="group" aria-label={l.t("Message type", "消息类型")}>
                    <button type="button" id="bs-mode-text" class={classes!("btn", "small", (!*hex_mode).then_some("active"))}
                        aria-pressed={(!*hex_mode).to_string()} onclick={set_mode(false)}
                        title={l.t("Text message: the bridge adds \\n", "文本消息：桥会加上 \\n")}>{ l.t("Text", "文本") }</button>
                    <button type="button" id="bs-mode-hex" class={classes!("btn", "small", (*hex_mode).then_some("active"))}
                        aria-pressed={(*hex_mode).to_string()} onclick={set_mode(true)}
                        title={l.t("Binary message typed as hex: forwarded byte for byte", "以十六进制输入的二进制消息：逐字节转发")}>{ l.t("Hex", "十六进制") }</button>
                </div>
                <label for="bs-input" class="visually-hidden">{ l.t("Message", "消息") }</label>
                <textarea id="bs-input" rows="1" value={(*input).clone()} {oninput} {onkeydown}
                    class={classes!(hex.is_some().then_some("hex"))}
                    placeholder={if hex.is_some() { l.t("Hex bytes, e.g. 68 69 0a", "十六进制字节，例如 68 69 0a") } else { l.t("Type a message…", "输入一条消息…") }}
                    autocomplete="off" spellcheck="false" />
                <button type="submit" class="btn primary" id="bs-send"
                    disabled={!can_send}>{ l.t("Send", "发送") }</button>
            </form>
            <p class="hint" id="bs-hint">
                if too_big {
                    <span class="warn">{ format!("{} ({} > {})",
                        l.t("Larger than the server accepts: it will close with 1009", "超过服务器允许的大小：服务器会以 1009 关闭连接"),
                        payload_len, max_message.unwrap_or_default()) }</span>
                } else if let Some(Err(err)) = &hex {
                    <span class="warn" id="bs-hex-error">{ match err {
                        util::HexError::NotHex(c, at) => match l {
                            Lang::En => format!("Not a hex digit: {c:?} (character {})", at + 1),
                            Lang::Zh => format!("不是十六进制数字：{c:?}（第 {} 个字符）", at + 1),
                        },
                        util::HexError::OddDigits => l.t("A hex digit is missing its pair: bytes are two digits each (0a, not a)",
                            "有一个十六进制数字不成对：每个字节两位（写 0a，不是 a）").to_string(),
                    } }</span>
                } else if let Some(Ok(bytes)) = &hex {
                    <span>{ format!("{} B · ", bytes.len()) }</span>
                    { l.t("sent as one binary message, byte for byte: no \\n is added, so end with 0a to finish the line (otherwise the echo answers the unfinished line when you pause)",
                          "作为一条二进制消息逐字节发送：不会加 \\n，以 0a 结束这一行（否则回显服务会在你停顿时回复这半行）") }
                } else {
                    <kbd>{ "Enter" }</kbd>{ l.t(" send · ", " 发送 · ") }
                    <kbd>{ "Shift+Enter" }</kbd>{ l.t(" new line (each line gets its own reply) · ", " 换行（每一行各得一个回复）· ") }
                    <kbd>{ "↑" }</kbd>{ l.t(" last message", " 上一条消息") }
                }
            </p>
        </section>
    }
}

fn status_key(status: &Status) -> &'static str {
    match status {
        Status::Connecting => "connecting",
        Status::Open => "open",
        Status::Closing => "closing",
        Status::Waiting { .. } => "waiting",
        Status::Closed => "closed",
    }
}

/// The last close, in words.
fn close_box(l: Lang, c: &CloseInfo, never_connected: bool) -> Html {
    let hint = if c.code == 1006 && never_connected {
        l.t(
            "The server did not answer. Is socklab-server running?",
            "服务器没有应答。socklab-server 在运行吗？",
        )
    } else {
        close_code_hint(l, c.code)
    };
    html! {
        <div class={classes!("close-info", (c.code == 1000).then_some("calm"))} id="close-info" role="alert">
            <div class="close-title">
                <span class="close-code">{ c.code }</span>
                <span class="close-name">{ close_code_name(l, c.code) }</span>
                <span class="muted small">{ format!(" · {}", c.clock) }</span>
            </div>
            if !c.reason.is_empty() {
                <div class="close-reason">{ l.t("reason: ", "原因：") }<q>{ c.reason.clone() }</q></div>
            }
            if !hint.is_empty() {
                <div class="close-hint">{ hint }</div>
            }
        </div>
    }
}

fn entry_view(l: Lang, e: &Rc<Entry>) -> Html {
    let (class, arrow, who) = match e.dir {
        Dir::Sent => ("entry sent", "↑", l.t("sent", "发送")),
        Dir::Received => ("entry received", "↓", l.t("received", "接收")),
        Dir::System => ("entry system", "•", l.t("connection", "连接")),
    };
    let body = match &e.body {
        Body::Text(t) => html! { <span class="msg">{ t.clone() }</span> },
        Body::Binary(b) => html! {
            <span class="msg bin" title={l.t("binary message: hex and ASCII", "二进制消息：十六进制和 ASCII")}>
                { util::hex_ascii(b, 64) }
            </span>
        },
        Body::Note(n) => html! { <span class="msg note">{ note_text(l, n) }</span> },
    };
    let meta = match e.dir {
        Dir::System => html! {},
        _ => html! {
            <span class="meta">
                { fmt_bytes(e.bytes as u64) }
                if let Some(rtt) = e.rtt_ms {
                    <span class="rtt" title={l.t("round-trip time", "往返时间")}>{ fmt_ms(rtt) }</span>
                }
            </span>
        },
    };
    html! {
        <li class={class} key={e.seq}>
            <span class="arrow" title={who} aria-label={who}>{ arrow }</span>
            <time>{ e.clock.clone() }</time>
            { body }
            { meta }
        </li>
    }
}

fn note_text(l: Lang, n: &Note) -> String {
    match n {
        Note::Connecting(url) => format!("{} {url}", l.t("connecting to", "正在连接")),
        Note::Opened => l
            .t(
                "WebSocket open (HTTP upgrade done) — the bridge opened a TCP connection to the echo service",
                "WebSocket 已打开（HTTP 升级完成）——桥已建立到回显服务的 TCP 连接",
            )
            .to_string(),
        Note::Closed(c) => {
            let mut s = format!(
                "{} {} ({})",
                l.t("closed:", "已关闭："),
                c.code,
                close_code_name(l, c.code)
            );
            if !c.reason.is_empty() {
                s.push_str(&format!(" — {}", c.reason));
            }
            s
        }
        Note::Retrying(secs) => format!(
            "{} {secs} s",
            l.t("reconnecting in", "重连倒计时")
        ),
        Note::NotSent => l
            .t("not sent: not connected", "未发送：尚未连接")
            .to_string(),
    }
}
