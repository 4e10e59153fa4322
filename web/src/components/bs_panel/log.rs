//! The message log: one row per message or connection note, newest at the bottom, following
//! new rows unless the user scrolled up to read (by CSS: see [`MessageLog`]). Each row is its
//! own component, so a new message draws one row, not the whole log.

use std::collections::VecDeque;
use std::rc::Rc;

use yew::prelude::*;

use crate::components::widgets::{fmt_bytes, fmt_ms};
use crate::i18n::{Lang, close_code_name};
use crate::state::Shared;
use crate::state::bridge::{Body, Dir, Entry, MAX_LOG, Note};
use crate::util;

#[derive(Properties, PartialEq)]
pub struct MessageLogProps {
    pub lang: Lang,
    pub log: Shared<VecDeque<Rc<Entry>>>,
    /// Entries dropped to keep the log bounded.
    pub dropped: u64,
    /// The filter, lowercased ("" shows all).
    pub query: AttrValue,
    /// No connection ever opened and none is open: show how to start the server instead.
    pub unreachable: bool,
}

/// Rows drawn until the user asks for the older ones the log keeps. Chromium walks every drawn
/// row of the log for each frame that adds one (its pre-paint and paint phases), so with all
/// [`MAX_LOG`] rows drawn a message cost about 8 ms more than with 60 to 89
/// (docs/benchmarks.md, "A long log").
const ROWS_DRAWN: usize = 60;

/// Older rows stop being drawn this many at a time, so most messages only add a row: taking
/// the oldest drawn row away as well would move every other row, and redraw it.
const HIDE_STEP: usize = 30;

/// How many of `matching` rows are not drawn: all but the newest [`ROWS_DRAWN`] to
/// `ROWS_DRAWN + HIDE_STEP - 1`, unless all are to be shown.
fn hidden_rows(matching: usize, show_all: bool) -> usize {
    if show_all {
        0
    } else {
        matching.saturating_sub(ROWS_DRAWN) / HIDE_STEP * HIDE_STEP
    }
}

/// How far from its end (px) the log still counts as following new rows.
const FOLLOW_SLACK_PX: i32 = 24;

#[component]
pub fn MessageLog(props: &MessageLogProps) -> Html {
    let l = props.lang;
    let log_ref = use_node_ref();
    // The log is a reversed flex box whose scroll offset counts from its end (0 = the newest
    // row in view), so it follows new rows with no script and no scroll: each row costs one
    // layout in the frame that draws it. Scrolled up, the browser's scroll anchoring keeps the
    // rows being read in place. Script scrolls only when a send should follow the log again.
    let stick = use_mut_ref(|| true);
    let show_all = use_state(|| false);
    {
        let (log_ref, stick) = (log_ref.clone(), stick.clone());
        // The newest sent row (a send and its reply are often drawn in the same frame, so the
        // newest row is not it).
        let last_sent = props
            .log
            .iter()
            .rev()
            .find(|e| e.dir == Dir::Sent)
            .map(|e| e.seq);
        use_effect_with(last_sent, move |last_sent| {
            if last_sent.is_some()
                && !stick.replace(true)
                && let Some(el) = log_ref.cast::<web_sys::Element>()
            {
                el.set_scroll_top(0);
            }
        });
    }
    // Scroll events come in a frame's own steps, before its layout: reading the offset costs
    // no extra layout.
    let onscroll = Callback::from(move |e: Event| {
        if let Some(el) = util::event_element(e.target()) {
            *stick.borrow_mut() = el.scroll_top() > -FOLLOW_SLACK_PX;
        }
    });
    if props.unreachable {
        return html! {
            <div class="log empty-state" id="bs-log">
                <div class="empty-icon" aria-hidden="true">{ "⚡" }</div>
                <p><b>{ l.t("Can't reach the server.", "连不上服务器。") }</b></p>
                <p>{ l.t("Start it, and this page reconnects by itself:", "启动它，本页面会自动重连：") }</p>
                <code>{ "cargo run -p socklab-server" }</code>
            </div>
        };
    }
    let query = props.query.as_str();
    let matching: Vec<&Rc<Entry>> = props.log.iter().filter(|e| e.matches(query)).collect();
    let hidden = hidden_rows(matching.len(), *show_all);
    let show_older = {
        let show_all = show_all.clone();
        Callback::from(move |_: MouseEvent| show_all.set(true))
    };
    html! {
        <div class="log" id="bs-log" ref={log_ref} {onscroll} tabindex="0" role="log"
            aria-label={l.t("Message log", "消息记录")}>
            <ol class="log-rows">
                if props.log.is_empty() {
                    <li class="log-hint">{ l.t(
                        "Type a message below and press Enter. The reply comes back stamped with the server's time: [time]:message.",
                        "在下面输入一条消息并按回车。回复会带上服务器时间：[时间]:消息。",
                    ) }</li>
                }
                if props.dropped > 0 {
                    <li class="log-hint" id="bs-log-trimmed">{ match l {
                        Lang::En => format!("Only the newest {MAX_LOG} rows are kept: {} older ones were dropped.", props.dropped),
                        Lang::Zh => format!("只保留最新的 {MAX_LOG} 行：已丢弃更早的 {} 行。", props.dropped),
                    } }</li>
                }
                if hidden > 0 {
                    // Above the rows: the log's offset counts from its end, so older rows
                    // drawn here leave the rows in view where they are.
                    <li class="log-hint" id="bs-log-older">
                        <button type="button" class="btn small" onclick={show_older}>{ match l {
                            Lang::En => format!("Show {hidden} older rows"),
                            Lang::Zh => format!("显示更早的 {hidden} 行"),
                        } }</button>
                    </li>
                }
                // One keyed list of its own (`{ for … }` would splice the rows into the `<ol>`'s
                // unkeyed children, where Yew pairs them from the end: a new row would then redraw
                // every row).
                { matching[hidden..].iter().map(|e| html! {
                    <LogRow key={e.seq} lang={l} entry={(*e).clone()} />
                }).collect::<Html>() }
            </ol>
        </div>
    }
}

#[derive(Properties)]
struct LogRowProps {
    lang: Lang,
    entry: Rc<Entry>,
}

impl PartialEq for LogRowProps {
    /// Entries never change once logged: the same one is the same row.
    fn eq(&self, other: &Self) -> bool {
        self.lang == other.lang && Rc::ptr_eq(&self.entry, &other.entry)
    }
}

#[component]
fn LogRow(props: &LogRowProps) -> Html {
    let (l, e) = (props.lang, &props.entry);
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
    html! {
        <li class={class}>
            <span class="arrow" title={who} aria-label={who}>{ arrow }</span>
            <time>{ e.clock.clone() }</time>
            { body }
            if e.dir != Dir::System {
                <span class="meta">
                    { fmt_bytes(e.bytes as u64) }
                    if let Some(rtt) = e.rtt_ms {
                        <span class="rtt" title={l.t("round-trip time", "往返时间")}>{ fmt_ms(rtt) }</span>
                    }
                </span>
            }
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
        Note::Retrying(secs) => format!("{} {secs} s", l.t("reconnecting in", "重连倒计时")),
        Note::NotSent => l
            .t("not sent: not connected", "未发送：尚未连接")
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_rows_are_drawn_until_the_older_ones_are_asked_for() {
        assert_eq!(hidden_rows(0, false), 0);
        assert_eq!(hidden_rows(ROWS_DRAWN + HIDE_STEP - 1, false), 0);
        assert_eq!(hidden_rows(ROWS_DRAWN + HIDE_STEP, false), HIDE_STEP);
        // The oldest drawn row stays until a whole step is hidden at once.
        let drawn = |n| n - hidden_rows(n, false);
        assert_eq!(
            drawn(ROWS_DRAWN + 2 * HIDE_STEP - 1),
            ROWS_DRAWN + HIDE_STEP - 1
        );
        assert_eq!(drawn(ROWS_DRAWN + 2 * HIDE_STEP), ROWS_DRAWN);
        assert!((ROWS_DRAWN..ROWS_DRAWN + HIDE_STEP).contains(&drawn(MAX_LOG)));
        assert_eq!(hidden_rows(MAX_LOG, true), 0);
    }
}
