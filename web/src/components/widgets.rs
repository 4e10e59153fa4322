//! Small pieces used by several panels: the logo, copyable commands, ticking timers.

use gloo_timers::callback::{Interval, Timeout};
use yew::prelude::*;

use crate::i18n::Lang;
use crate::util;

/// The socklab mark: two sockets joined by a line.
#[component]
pub fn Logo() -> Html {
    html! {
        <svg class="logo" viewBox="0 0 40 40" width="40" height="40" aria-hidden="true">
            <rect x="1" y="1" width="38" height="38" rx="10" fill="var(--accent)" />
            <circle cx="12" cy="20" r="5" fill="none" stroke="#fff" stroke-width="3" />
            <circle cx="28" cy="20" r="5" fill="none" stroke="#fff" stroke-width="3" />
            <path d="M17 20h6" stroke="#fff" stroke-width="3" stroke-linecap="round" />
        </svg>
    }
}

#[derive(Properties, PartialEq)]
pub struct CopyButtonProps {
    pub lang: Lang,
    /// What goes to the clipboard.
    pub text: AttrValue,
    /// What the button copies, for screen readers ("copy nc command").
    #[prop_or_default]
    pub label: AttrValue,
}

/// A button that copies `text` and says so for a moment.
#[component]
pub fn CopyButton(props: &CopyButtonProps) -> Html {
    // 0: idle, 1: copied, 2: no clipboard here (select and press Ctrl+C)
    let state = use_state(|| 0u8);
    let onclick = {
        let state = state.clone();
        let text = props.text.clone();
        Callback::from(move |_: MouseEvent| {
            state.set(if util::copy_to_clipboard(&text) { 1 } else { 2 });
            let state = state.clone();
            Timeout::new(1600, move || state.set(0)).forget();
        })
    };
    let l = props.lang;
    let (text, class) = match *state {
        1 => (l.t("Copied", "已复制"), "btn copy done"),
        2 => (l.t("Select + Ctrl+C", "请选中后 Ctrl+C"), "btn copy"),
        _ => (l.t("Copy", "复制"), "btn copy"),
    };
    let aria = format!("{} {}", l.t("Copy", "复制"), props.label);
    html! {
        <button type="button" {class} {onclick} aria-label={aria}>{ text }</button>
    }
}

#[derive(Properties, PartialEq)]
pub struct CommandProps {
    pub lang: Lang,
    /// The command line.
    pub cmd: AttrValue,
    /// A few words on what it does.
    pub note: AttrValue,
}

/// A shell command with a copy button.
#[component]
pub fn Command(props: &CommandProps) -> Html {
    html! {
        <div class="cmd">
            <div class="cmd-text">
                <code><span class="prompt" aria-hidden="true">{ "$ " }</span>{ props.cmd.clone() }</code>
                <span class="cmd-note">{ props.note.clone() }</span>
            </div>
            <CopyButton lang={props.lang} text={props.cmd.clone()} label={props.note.clone()} />
        </div>
    }
}

/// Re-renders the calling component once a second while it is shown.
#[hook]
fn use_ticker() -> f64 {
    let now = use_state(util::now_ms);
    {
        let now = now.clone();
        use_effect_with((), move |_| {
            let interval = Interval::new(1000, move || now.set(util::now_ms()));
            move || drop(interval)
        });
    }
    *now
}

#[derive(Properties, PartialEq)]
pub struct SinceProps {
    /// `performance.now()` of the start.
    pub since_ms: f64,
}

/// How long since `since_ms`: `42 s`, `3:07`, `1:02:03`.
#[component]
pub fn Elapsed(props: &SinceProps) -> Html {
    let now = use_ticker().max(util::now_ms());
    let secs = ((now - props.since_ms) / 1000.0).max(0.0) as u64;
    let text = if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{}:{:02}", secs / 60, secs % 60)
    } else {
        format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
    };
    html! { <span class="elapsed">{ text }</span> }
}

/// Whole seconds until `since_ms` (a time in the future), counting down.
#[component]
pub fn Countdown(props: &SinceProps) -> Html {
    let now = use_ticker().max(util::now_ms());
    let secs = ((props.since_ms - now) / 1000.0).ceil().max(0.0) as u64;
    html! { <span class="countdown">{ format!("{secs} s") }</span> }
}

/// A value given in tenths, with one decimal: `123` → `12.3`.
fn tenths(value_x10: u64) -> String {
    format!("{}.{}", value_x10 / 10, value_x10 % 10)
}

/// `1 B`, `1.2 KB`.
pub fn fmt_bytes(n: u64) -> String {
    if n < 1024 {
        format!("{n} B")
    } else if n < 1024 * 1024 {
        format!("{} KB", tenths(n * 10 / 1024))
    } else {
        format!("{} MB", tenths(n * 10 / (1024 * 1024)))
    }
}

/// `0.8 ms`, `12 ms`.
pub fn fmt_ms(ms: f64) -> String {
    format!("{} ms", fmt_ms_value(ms))
}

/// The number [`fmt_ms`] shows: tenths below 10 ms (`0.8`), whole ms above (`12`).
pub fn fmt_ms_value(ms: f64) -> String {
    let ms = ms.max(0.0);
    if ms < 10.0 {
        tenths((ms * 10.0).round() as u64)
    } else {
        (ms.round() as u64).to_string()
    }
}
