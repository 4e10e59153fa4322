//! The row under the log: the session's figures (with `data-*` hooks for tests and tools,
//! always equal to what is shown) and the log's filter and clear button.

use std::collections::VecDeque;
use std::rc::Rc;

use wasm_bindgen::JsCast;
use yew::prelude::*;

use crate::components::widgets::{fmt_ms, fmt_ms_value};
use crate::i18n::Lang;
use crate::state::Shared;
use crate::state::bridge::{Entry, RttSummary};

#[derive(Properties, PartialEq)]
pub struct StatsProps {
    pub lang: Lang,
    pub sent: u64,
    pub received: u64,
    pub rtt: Option<RttSummary>,
}

/// Messages sent and received, and the round-trip times' median and maximum.
#[component]
pub fn Stats(props: &StatsProps) -> Html {
    let l = props.lang;
    // The hook carries exactly the shown figure ("" until there is one).
    let p50 = props.rtt.map(|r| fmt_ms_value(r.p50)).unwrap_or_default();
    html! {
        <span class="stats-figures" id="bs-stats" data-sent={props.sent.to_string()}
            data-received={props.received.to_string()} data-rtt-p50-ms={p50}>
            <span>{ l.t("sent ", "已发送 ") }<b>{ props.sent }</b></span>
            <span>{ l.t("received ", "已接收 ") }<b>{ props.received }</b></span>
            if let Some(rtt) = props.rtt {
                <span title={l.t("round-trip time: from the WebSocket's send to its message event", "往返时间：从 WebSocket 发送到收到消息事件")}>
                    { "RTT p50 " }<b>{ fmt_ms(rtt.p50) }</b>{ " · max " }<b>{ fmt_ms(rtt.max) }</b>
                </span>
            }
        </span>
    }
}

#[derive(Properties, PartialEq)]
pub struct LogToolsProps {
    pub lang: Lang,
    pub log: Shared<VecDeque<Rc<Entry>>>,
    /// The filter as typed.
    pub filter: AttrValue,
    pub onfilter: Callback<String>,
    pub onclear: Callback<()>,
}

/// The log's filter (with how many rows match) and its clear button.
#[component]
pub fn LogTools(props: &LogToolsProps) -> Html {
    let l = props.lang;
    let query = crate::util::lowercase(props.filter.trim());
    let oninput = props.onfilter.reform(|e: InputEvent| {
        e.target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
            .map(|field| field.value())
            .unwrap_or_default()
    });
    let onclick = props.onclear.reform(|_: MouseEvent| ());
    html! {
        <>
            <input type="search" class="filter" id="bs-filter" value={props.filter.clone()}
                {oninput} placeholder={l.t("Filter", "筛选")}
                aria-label={l.t("Show only messages containing", "只显示包含此文字的消息")} />
            if !query.is_empty() {
                <span class="muted small" id="bs-filter-count">
                    { format!("{}/{}", props.log.iter().filter(|e| e.matches(&query)).count(), props.log.len()) }
                </span>
            }
            <button class="btn ghost small" {onclick}
                disabled={props.log.is_empty()}>{ l.t("Clear", "清空") }</button>
        </>
    }
}
