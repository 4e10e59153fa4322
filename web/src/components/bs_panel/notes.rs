//! The two notes above the log: which upstream TCP session the bridge opened for this page,
//! and the last close in words.

use yew::prelude::*;

use crate::i18n::{Lang, close_code_hint, close_code_name};
use crate::state::bridge::CloseInfo;

/// This page's upstream TCP session, as the monitor showed it. Only what the note shows, so
/// the note does not redraw when the session's counters move.
#[derive(Debug, Clone, PartialEq)]
pub struct Upstream {
    /// The session's id on the server.
    pub id: u64,
    /// The bridge's end (`ip:port`).
    pub peer: String,
    /// The echo's end.
    pub local: String,
}

#[derive(Properties, PartialEq)]
pub struct UpstreamNoteProps {
    pub lang: Lang,
    pub upstream: Option<Upstream>,
    pub is_open: bool,
}

#[component]
pub fn UpstreamNote(props: &UpstreamNoteProps) -> Html {
    let l = props.lang;
    match (&props.upstream, props.is_open) {
        (Some(u), _) => html! {
            <div class="upstream" id="bs-upstream">
                <span class="kind tcp">{ "TCP" }</span>
                <span>
                    { l.t("Your upstream: bridge session ", "你的上游：桥的会话 ") }
                    <b>{ format!("#{}", u.id) }</b>
                    { " " }<code>{ format!("{} → {}", u.peer, u.local) }</code>
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
    }
}

#[derive(Properties, PartialEq)]
pub struct CloseBoxProps {
    pub lang: Lang,
    pub close: CloseInfo,
    /// No connection ever opened: a 1006 then means "no server there".
    pub never_connected: bool,
}

/// The last close, in words.
#[component]
pub fn CloseBox(props: &CloseBoxProps) -> Html {
    let (l, c) = (props.lang, &props.close);
    let hint = if c.code == 1006 && props.never_connected {
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
