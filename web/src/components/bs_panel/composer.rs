//! The composer: text or hex, Enter sends, Shift+Enter makes a new line, ↑/↓ recall. Typing
//! redraws only this component.

use wasm_bindgen::JsCast;
use yew::prelude::*;

use super::hint::Hint;
use super::history::{History, use_history};
use crate::i18n::Lang;
use crate::services::bridge::BridgeHandle;
use crate::util;

#[derive(Properties, PartialEq)]
pub struct ComposerProps {
    pub lang: Lang,
    pub bridge: BridgeHandle,
    pub is_open: bool,
    /// The largest message the server accepts, once known.
    pub max_message: Option<usize>,
}

/// Sends what is typed (hex mode: the bytes it spells); whether it went out.
fn send(bridge: &BridgeHandle, text: &str, hex: bool) -> bool {
    if hex {
        match util::parse_hex(text) {
            Ok(bytes) if !bytes.is_empty() => bridge.send_binary(&bytes),
            // The hint under the input says what is wrong.
            _ => false,
        }
    } else {
        !text.is_empty() && bridge.send(text)
    }
}

/// What a key does: Enter sends, ↑/↓ recall (only in a one-line message, where they would
/// not move the caret), anything else types.
fn on_key(
    e: &KeyboardEvent,
    input: &UseStateHandle<String>,
    history: &History,
    submit: &Callback<()>,
) {
    // While an input method composes (pinyin), Enter picks a word: leave it alone.
    if e.is_composing() || e.key_code() == 229 {
        return;
    }
    let recalled = match e.key().as_str() {
        "Enter" if !e.shift_key() => {
            e.prevent_default();
            submit.emit(());
            return;
        }
        "ArrowUp" if !input.contains('\n') => history.back(),
        "ArrowDown" if !input.contains('\n') => history.forward(),
        _ => None,
    };
    if let Some(text) = recalled {
        e.prevent_default();
        input.set(text);
    }
}

#[component]
pub fn Composer(props: &ComposerProps) -> Html {
    let l = props.lang;
    let input = use_state(String::new);
    // Binary mode: the input is hex, sent as one binary message, byte for byte.
    let hex_mode = use_state(|| false);
    let history = use_history();

    let submit = {
        let (input, hex_mode, history) = (input.clone(), hex_mode.clone(), history.clone());
        let bridge = props.bridge.clone();
        Callback::from(move |()| {
            if send(&bridge, &input, *hex_mode) {
                history.push((*input).clone());
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
        let (input, submit) = (input.clone(), submit.clone());
        Callback::from(move |e: KeyboardEvent| on_key(&e, &input, &history, &submit))
    };
    let onsubmit = Callback::from(move |e: SubmitEvent| {
        e.prevent_default();
        submit.emit(());
    });
    let set_mode = |hex: bool| {
        let hex_mode = hex_mode.clone();
        Callback::from(move |_: MouseEvent| hex_mode.set(hex))
    };
    let hex = hex_mode.then(|| util::parse_hex(&input));
    let payload_len = match &hex {
        Some(Ok(bytes)) => bytes.len(),
        Some(Err(_)) => 0,
        None => input.len(),
    };
    let mode_button = |id: &'static str, on: bool, label: &'static str, title: &'static str| {
        html! {
            <button type="button" {id} class={classes!("btn", "small", on.then_some("active"))}
                aria-pressed={on.to_string()} onclick={set_mode(id == "bs-mode-hex")} {title}>{ label }</button>
        }
    };
    html! {
        <>
            <form class="composer" {onsubmit}>
                <div class="seg-toggle mode" role="group" aria-label={l.t("Message type", "消息类型")}>
                    { mode_button("bs-mode-text", !*hex_mode, l.t("Text", "文本"),
                        l.t("Text message: the bridge adds \\n", "文本消息：桥会加上 \\n")) }
                    { mode_button("bs-mode-hex", *hex_mode, l.t("Hex", "十六进制"),
                        l.t("Binary message typed as hex: forwarded byte for byte", "以十六进制输入的二进制消息：逐字节转发")) }
                </div>
                <label for="bs-input" class="visually-hidden">{ l.t("Message", "消息") }</label>
                <textarea id="bs-input" rows="1" value={(*input).clone()} {oninput} {onkeydown}
                    class={classes!(hex.is_some().then_some("hex"))}
                    placeholder={if hex.is_some() { l.t("Hex bytes, e.g. 68 69 0a", "十六进制字节，例如 68 69 0a") } else { l.t("Type a message…", "输入一条消息…") }}
                    autocomplete="off" spellcheck="false" />
                <button type="submit" class="btn primary" id="bs-send"
                    disabled={!props.is_open || payload_len == 0}>{ l.t("Send", "发送") }</button>
            </form>
            <Hint lang={l} {hex} {payload_len} max_message={props.max_message} />
        </>
    }
}
