//! Chinese and English. Every text on the page is written as `lang.t("English", "中文")` right
//! where it is used, so a newcomer finds both versions next to the markup. The choice is
//! remembered in `localStorage`; the first visit follows the browser's language.

use crate::util;

/// The page's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// 中文 (the lesson's language).
    Zh,
    /// English.
    En,
}

/// Where the choice is remembered.
const STORAGE_KEY: &str = "socklab.lang";

impl Lang {
    /// Picks the text for this language.
    pub fn t(self, en: &'static str, zh: &'static str) -> &'static str {
        match self {
            Lang::En => en,
            Lang::Zh => zh,
        }
    }

    /// The BCP 47 code, for `<html lang>`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The other language.
    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The remembered choice, else the browser's first language (Chinese or English).
    pub fn initial() -> Lang {
        match util::load_setting(STORAGE_KEY).as_deref() {
            Some("zh") => return Lang::Zh,
            Some("en") => return Lang::En,
            _ => {}
        }
        let first = util::browser_languages()
            .into_iter()
            .next()
            .unwrap_or_default();
        if first.to_ascii_lowercase().starts_with("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    /// Remembers the choice and labels the document with it.
    pub fn remember(self) {
        util::save_setting(
            STORAGE_KEY,
            match self {
                Lang::Zh => "zh",
                Lang::En => "en",
            },
        );
        util::set_document_lang(self.code());
    }
}

/// A close code's meaning in words (`close_code::name` gives the English standard name).
pub fn close_code_name(lang: Lang, code: u16) -> &'static str {
    match lang {
        Lang::En => socklab_protocol::close_code::name(code),
        Lang::Zh => match code {
            1000 => "正常关闭",
            1001 => "离开（空闲超时或服务器关闭）",
            1002 => "协议错误",
            1003 => "不支持的数据",
            1005 => "未收到状态码",
            1006 => "异常关闭（没有收到关闭帧）",
            1007 => "数据无效（文本不是 UTF-8）",
            1008 => "违反策略",
            1009 => "消息太大",
            1010 => "缺少扩展",
            1011 => "服务器错误",
            1012 => "服务重启",
            1013 => "请稍后再试",
            1015 => "TLS 握手失败",
            _ => "未知",
        },
    }
}

/// What a close code means *here*, in one sentence for people.
pub fn close_code_hint(lang: Lang, code: u16) -> &'static str {
    match code {
        1000 => lang.t(
            "The echo service (the bridge's upstream) closed its TCP connection, so the bridge closed this WebSocket.",
            "回显服务（桥的上游）关闭了 TCP 连接，于是桥也关闭了这个 WebSocket。",
        ),
        1001 => lang.t(
            "The server went away: it is shutting down, or this connection was idle too long.",
            "服务器离开了：正在关闭，或者这个连接空闲太久。",
        ),
        1002 => lang.t(
            "The server received a malformed WebSocket frame.",
            "服务器收到了格式错误的 WebSocket 帧。",
        ),
        1006 => lang.t(
            "The connection dropped without a close frame — usually the server is not running or cannot be reached.",
            "连接在没有关闭帧的情况下断开——通常是服务器没有运行或无法访问。",
        ),
        1007 => lang.t(
            "A text message was not valid UTF-8.",
            "文本消息不是有效的 UTF-8。",
        ),
        1009 => lang.t(
            "The message was larger than the server accepts.",
            "消息超过了服务器允许的大小。",
        ),
        1011 => lang.t(
            "The bridge could not reach its upstream TCP echo service, so it had nothing to bridge to.",
            "桥连不上它的上游 TCP 回显服务，没有可以转发的对象。",
        ),
        _ => "",
    }
}
