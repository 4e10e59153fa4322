//! The message log: one row per message or connection note, newest at the bottom, following
//! new rows unless the user scrolled up to read (by CSS: see [`use_follow`]). Each row is its
//! own component, so a new message draws one row, not the whole log; only the newest rows are
//! drawn until the reader asks for the older ones ([`first_drawn`]).

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

/// Rows drawn at least, until the user asks for the older ones the log keeps. Chromium walks
/// every drawn row of the log for each frame that adds one (its pre-paint and paint phases),
/// so with all [`MAX_LOG`] rows drawn a message cost about 8 ms more than with 61 to 90
/// (docs/benchmarks.md, "A long log").
const MIN_ROWS_DRAWN: u64 = 60;

/// Older rows stop being drawn this many at a time, so most messages only add a row: taking
/// the oldest drawn row away as well would move every other row, and redraw it.
const HIDE_STEP: u64 = 30;

/// The `seq` of the oldest entry drawn when `newest` is the newest: a multiple of
/// [`HIDE_STEP`], [`MIN_ROWS_DRAWN`] to `MIN_ROWS_DRAWN + HIDE_STEP - 1` entries back. By
/// `seq`, not by count: once the log is full its count stays at [`MAX_LOG`].
fn first_drawn(newest: u64) -> u64 {
    newest.saturating_sub(MIN_ROWS_DRAWN) / HIDE_STEP * HIDE_STEP
}

/// How far from its end (px) the log still counts as following new rows.
const FOLLOW_SLACK_PX: i32 = 24;

/// The B/S log: its newest rows in a live region, the older ones the log keeps on request.
#[component]
pub fn MessageLog(props: &MessageLogProps) -> Html {
    let l = props.lang;
    let log_ref = use_node_ref();
    let (following, onscroll) = use_follow(&log_ref, last_sent(&props.log));
    let (show_all, onshow) = use_show_all(props.log.is_empty(), &log_ref);
    // The oldest `seq` of the newest rows (older ones are drawn only on request). It moves on
    // only while the log follows its end, so rows never vanish above a reader scrolled up
    // (they go once the reader is back at the end), and not while every row is drawn, so no
    // row moves from one list to the other (which would draw it again).
    let first = use_mut_ref(|| 0);
    if props.unreachable {
        return unreachable_state(l);
    }
    let query = props.query.as_str();
    let matching: Vec<&Rc<Entry>> = props.log.iter().filter(|e| e.matches(query)).collect();
    let older = {
        let due = first_drawn(props.log.back().map_or(0, |e| e.seq));
        let mut first = first.borrow_mut();
        if !show_all && (following || due < *first) {
            *first = due;
        }
        matching.partition_point(|e| e.seq < *first)
    };
    let (older_rows, newest_rows) = matching.split_at(older);
    let hidden = if show_all { 0 } else { older };
    html! {
        <>
        { older_button(l, hidden, onshow) }
        // A focusable box that scrolls (its name for the keyboard's sake); the live region
        // inside it holds the newest rows only. The older rows a reader asked for, and the note
        // on dropped rows (which changes with every message once the log is full), are not
        // news: a screen reader does not announce them.
        <div class="log" id="bs-log" ref={log_ref} {onscroll} tabindex="0" role="group"
            aria-label={l.t("Message log", "消息记录")}>
            <div class="log-rows">
            { dropped_note(l, props.dropped) }
            if show_all && !older_rows.is_empty() {
                <ol class="log-list" id="bs-log-earlier">{ rows(l, older_rows) }</ol>
            }
            <div role="log" id="bs-log-live" aria-label={l.t("Newest rows", "最新的行")}>
            <ol class="log-list">
                if props.log.is_empty() {
                    <li class="log-hint">{ l.t(
                        "Type a message below and press Enter. The reply comes back stamped with the server's time: [time]:message.",
                        "在下面输入一条消息并按回车。回复会带上服务器时间：[时间]:消息。",
                    ) }</li>
                }
                { rows(l, newest_rows) }
            </ol>
            </div>
            </div>
        </div>
        </>
    }
}

/// The `seq` of the newest sent row: a send and its reply are often drawn in the same frame,
/// so the newest row is not it.
fn last_sent(log: &VecDeque<Rc<Entry>>) -> Option<u64> {
    log.iter().rev().find(|e| e.dir == Dir::Sent).map(|e| e.seq)
}

/// Whether the log follows its end (true until the reader scrolls up), and the scroll
/// handler that keeps it current. A new send follows the log's end again.
///
/// The log is a reversed flex box whose scroll offset counts from its end (0 = the newest
/// row in view), so it follows new rows with no script and no scroll: each row costs one
/// layout in the frame that draws it. Scrolled up, the browser's scroll anchoring keeps the
/// rows being read in place. Script scrolls only when a send should follow the log again.
#[hook]
fn use_follow(log_ref: &NodeRef, last_sent: Option<u64>) -> (bool, Callback<Event>) {
    let stick = use_mut_ref(|| true);
    {
        let (log_ref, stick) = (log_ref.clone(), stick.clone());
        use_effect_with(last_sent, move |last_sent| {
            if last_sent.is_some()
                && !stick.replace(true)
                && let Some(el) = log_ref.cast::<web_sys::Element>()
            {
                el.set_scroll_top(0);
            }
        });
    }
    let following = *stick.borrow();
    // Scroll events come in a frame's own steps, before its layout: reading the offset costs
    // no extra layout.
    let onscroll = Callback::from(move |e: Event| {
        if let Some(el) = util::event_element(e.target()) {
            *stick.borrow_mut() = el.scroll_top() > -FOLLOW_SLACK_PX;
        }
    });
    (following, onscroll)
}

/// Whether the reader asked for every row the log keeps, and the click that asks; cleared,
/// the log goes back to its newest rows.
#[hook]
fn use_show_all(empty: bool, log_ref: &NodeRef) -> (bool, Callback<MouseEvent>) {
    let show_all = use_state(|| false);
    {
        let show_all = show_all.clone();
        use_effect_with(empty, move |empty| {
            if *empty {
                show_all.set(false);
            }
        });
    }
    let onshow = {
        let (show_all, log_ref) = (show_all.clone(), log_ref.clone());
        Callback::from(move |_: MouseEvent| {
            show_all.set(true);
            // The button goes: keyboard and screen-reader users continue in the log.
            if let Some(log) = log_ref.cast::<web_sys::HtmlElement>() {
                let _ = log.focus();
            }
        })
    };
    (*show_all, onshow)
}

/// What the log shows while the server has never been reached: how to start it.
fn unreachable_state(l: Lang) -> Html {
    html! {
        <div class="log empty-state" id="bs-log">
            <div class="empty-icon" aria-hidden="true">{ "⚡" }</div>
            <p><b>{ l.t("Can't reach the server.", "连不上服务器。") }</b></p>
            <p>{ l.t("Start it, and this page reconnects by itself:", "启动它，本页面会自动重连：") }</p>
            <code>{ "cargo run -p socklab-server" }</code>
        </div>
    }
}

/// The button that draws the `hidden` older rows (nothing when there are none). It sits
/// outside the log's live region, whose additions a screen reader announces. The log's
/// offset counts from its end, so the older rows drawn above leave the rows in view alone.
fn older_button(l: Lang, hidden: usize, onclick: Callback<MouseEvent>) -> Html {
    if hidden == 0 {
        return Html::default();
    }
    html! {
        <p class="log-older">
            <button type="button" id="bs-log-older" class="btn small" {onclick}>{ match l {
                Lang::En => format!("Show {hidden} older rows"),
                Lang::Zh => format!("显示更早的 {hidden} 行"),
            } }</button>
        </p>
    }
}

/// The note that older rows were dropped to keep the log bounded (nothing before).
fn dropped_note(l: Lang, dropped: u64) -> Html {
    if dropped == 0 {
        return Html::default();
    }
    html! {
        <p class="log-hint" id="bs-log-trimmed">{ match l {
            Lang::En => format!("Only the newest {MAX_LOG} rows are kept: {dropped} older ones were dropped."),
            Lang::Zh => format!("只保留最新的 {MAX_LOG} 行：已丢弃更早的 {dropped} 行。"),
        } }</p>
    }
}

/// The rows of `entries`, as one keyed list of their own: `{ for … }` would splice them into
/// the `<ol>`'s unkeyed children, where Yew pairs them from the end, and a new row would then
/// redraw every row.
fn rows(l: Lang, entries: &[&Rc<Entry>]) -> Html {
    entries
        .iter()
        .map(|e| html! { <LogRow key={e.seq} lang={l} entry={Rc::clone(e)} /> })
        .collect()
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
    fn the_newest_60_to_89_rows_are_drawn_and_older_ones_go_30_at_a_time() {
        assert_eq!(first_drawn(0), 0);
        // seq 0 to 89: all 90 drawn.
        assert_eq!(first_drawn(89), 0);
        // One more: the oldest 30 go at once, 61 stay.
        assert_eq!(first_drawn(90), 30);
        assert_eq!(first_drawn(119), 30);
        assert_eq!(first_drawn(120), 60);
        // A full log (its count stays at MAX_LOG) still moves in steps, by seq.
        for newest in 1_000..1_100 {
            let drawn = newest - first_drawn(newest) + 1;
            assert!((MIN_ROWS_DRAWN + 1..=MIN_ROWS_DRAWN + HIDE_STEP).contains(&drawn));
            assert_eq!(first_drawn(newest) % HIDE_STEP, 0);
        }
    }
}
