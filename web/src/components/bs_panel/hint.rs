//! The line under the composer: keys, or what hex mode will send, or what is wrong.

use yew::prelude::*;

use crate::i18n::Lang;
use crate::util::{self, HexError};

#[derive(Properties, PartialEq)]
pub struct HintProps {
    pub lang: Lang,
    /// In hex mode: the bytes typed, or why they are not bytes.
    pub hex: Option<Result<Vec<u8>, HexError>>,
    /// The message's size in bytes.
    pub payload_len: usize,
    pub max_message: Option<usize>,
}

#[component]
pub fn Hint(props: &HintProps) -> Html {
    let l = props.lang;
    let too_big = props.max_message.filter(|&m| props.payload_len > m);
    html! {
        <p class="hint" id="bs-hint">
            if let Some(max) = too_big {
                <span class="warn">{ format!("{} ({} > {max})",
                    l.t("Larger than the server accepts: it will close with 1009", "超过服务器允许的大小：服务器会以 1009 关闭连接"),
                    props.payload_len) }</span>
            } else if let Some(Err(err)) = &props.hex {
                <span class="warn" id="bs-hex-error">{ hex_error(l, err) }</span>
            } else if let Some(Ok(bytes)) = &props.hex {
                <span>{ format!("{} B · ", bytes.len()) }</span>
                { l.t("sent as one binary message, byte for byte: no \\n is added, so end with 0a to finish the line (otherwise the echo answers the unfinished line when you pause)",
                      "作为一条二进制消息逐字节发送：不会加 \\n，以 0a 结束这一行（否则回显服务会在你停顿时回复这半行）") }
            } else {
                <kbd>{ "Enter" }</kbd>{ l.t(" send · ", " 发送 · ") }
                <kbd>{ "Shift+Enter" }</kbd>{ l.t(" new line (each line gets its own reply) · ", " 换行（每一行各得一个回复）· ") }
                <kbd>{ "↑" }</kbd>{ l.t(" last message", " 上一条消息") }
            }
        </p>
    }
}

fn hex_error(l: Lang, err: &HexError) -> String {
    match err {
        util::HexError::NotHex(c, at) => match l {
            Lang::En => format!("Not a hex digit: {c:?} (character {})", at + 1),
            Lang::Zh => format!("不是十六进制数字：{c:?}（第 {} 个字符）", at + 1),
        },
        util::HexError::OddDigits => l
            .t(
                "A hex digit is missing its pair: bytes are two digits each (0a, not a)",
                "有一个十六进制数字不成对：每个字节两位（写 0a，不是 a）",
            )
            .to_string(),
    }
}
