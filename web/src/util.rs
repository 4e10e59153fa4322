//! Small browser helpers: clocks, URLs, hex dumps, the clipboard and local storage.

use wasm_bindgen::{JsCast, JsValue};

thread_local! {
    /// Looked up once: timestamps are taken in socket callbacks, where every microsecond
    /// counts against the round-trip time shown.
    static PERFORMANCE: Option<web_sys::Performance> =
        web_sys::window().and_then(|w| w.performance());
}

/// Milliseconds since the page loaded, from the monotonic `performance.now()`.
pub fn now_ms() -> f64 {
    PERFORMANCE
        .with(|p| p.as_ref().map(|p| p.now()))
        .unwrap_or_else(js_sys::Date::now)
}

/// A number as JavaScript writes it (`30`, `0.5`): the same text as Rust's `{}` for the
/// values the page shows, without Rust's float formatting code (some 8 KB) in the wasm.
/// Natively (the unit tests) by Rust's `{}`.
pub fn number_text(n: f64) -> String {
    #[cfg(target_arch = "wasm32")]
    return js_sys::Number::from(n)
        .to_string_with_radix(10)
        .map_or_else(|_| String::new(), String::from);
    #[cfg(not(target_arch = "wasm32"))]
    return n.to_string();
}

/// `text` in lower case. In the page by JavaScript's `String#toLowerCase` (full Unicode, like
/// Rust's `str::to_lowercase`, whose case tables would add some 15 KB to the wasm); natively
/// (the unit tests) by Rust's.
pub fn lowercase(text: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    return String::from(js_sys::JsString::from(text).to_lower_case());
    #[cfg(not(target_arch = "wasm32"))]
    return text.to_lowercase();
}

fn two(n: u32) -> String {
    format!("{n:02}")
}

/// The local wall-clock time with milliseconds, `22:10:00.123`.
pub fn clock_now() -> String {
    let d = js_sys::Date::new_0();
    format!(
        "{}:{}:{}.{:03}",
        two(d.get_hours()),
        two(d.get_minutes()),
        two(d.get_seconds()),
        d.get_milliseconds()
    )
}

/// An RFC 3339 time from the server, shown as local `22:10:00` (falls back to the raw text).
pub fn clock_of(at: &str) -> String {
    let d = js_sys::Date::new(&JsValue::from_str(at));
    if d.get_time().is_nan() {
        return at.get(11..19).unwrap_or(at).to_string();
    }
    format!(
        "{}:{}:{}",
        two(d.get_hours()),
        two(d.get_minutes()),
        two(d.get_seconds())
    )
}

/// The WebSocket URL of a server path (`ws`, `api/events`), relative to the page, so the page
/// also works behind a proxy under a prefix and over `https` (→ `wss`).
pub fn ws_url(path: &str) -> String {
    let href = page_href();
    let base = web_sys::Url::new(&href).ok();
    match base.and_then(|_| web_sys::Url::new_with_base(path, &href).ok()) {
        Some(url) => {
            let scheme = if url.protocol() == "https:" {
                "wss:"
            } else {
                "ws:"
            };
            url.set_protocol(scheme);
            url.href()
        }
        None => format!("ws://127.0.0.1:8080/{path}"),
    }
}

/// The page's own URL.
pub fn page_href() -> String {
    web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default()
}

/// The host the page was loaded from (`127.0.0.1:8080`).
pub fn page_host() -> String {
    web_sys::window()
        .and_then(|w| w.location().host().ok())
        .unwrap_or_default()
}

/// The host name alone (`127.0.0.1`, `example.org`).
pub fn page_hostname() -> String {
    web_sys::window()
        .and_then(|w| w.location().hostname().ok())
        .unwrap_or_default()
}

/// A short random tag (8 hex digits) so the page can find its own session on the monitor.
pub fn random_tag() -> String {
    let n = (js_sys::Math::random() * f64::from(u32::MAX)) as u32;
    format!("{n:08x}")
}

/// Bytes as `68 69 0a  hi.`: hex, then printable ASCII with dots for the rest.
pub fn hex_ascii(bytes: &[u8], max: usize) -> String {
    let shown = &bytes[..bytes.len().min(max)];
    let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    let ascii: String = shown
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let more = if bytes.len() > max { " …" } else { "" };
    format!("{}{more}  {ascii}", hex.join(" "))
}

/// Why typed hex is not bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HexError {
    /// A character that is neither a hex digit nor a separator, and where (in characters).
    NotHex(char, usize),
    /// A hex digit left without its pair, e.g. `6`.
    OddDigits,
}

/// Typed hex as bytes: pairs of hex digits, optionally `0x`-prefixed, separated by spaces,
/// commas, colons or nothing (`68 69 0a`, `68690a`, `0x68,0x69`).
pub fn parse_hex(text: &str) -> Result<Vec<u8>, HexError> {
    let mut bytes = Vec::new();
    let mut high: Option<u8> = None;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // `0x` starts a byte only between bytes, never inside one.
        if high.is_none() && c == '0' && matches!(chars.get(i + 1), Some('x' | 'X')) {
            i += 2;
            continue;
        }
        if let Some(digit) = c.to_digit(16) {
            // A hex digit is below 16, so it fits in a u8.
            let digit = digit as u8;
            match high.take() {
                Some(h) => bytes.push(h << 4 | digit),
                None => high = Some(digit),
            }
        } else if c.is_whitespace() || c == ',' || c == ':' {
            if high.is_some() {
                return Err(HexError::OddDigits);
            }
        } else {
            return Err(HexError::NotHex(c, i));
        }
        i += 1;
    }
    if high.is_some() {
        return Err(HexError::OddDigits);
    }
    Ok(bytes)
}

/// Copies `text` to the clipboard. Returns `false` when the browser offers no clipboard
/// (plain `http://` on a non-local host), so the caller can ask for Ctrl+C instead.
pub fn copy_to_clipboard(text: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let navigator = window.navigator();
    let has_clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard"))
        .map(|c| !c.is_undefined() && !c.is_null())
        .unwrap_or(false);
    if has_clipboard {
        let _promise = navigator.clipboard().write_text(text);
        return true;
    }
    false
}

/// Reads a remembered setting.
pub fn load_setting(key: &str) -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(key)
        .ok()?
}

/// Remembers a setting (silently does nothing when storage is off, as in private windows).
pub fn save_setting(key: &str, value: &str) {
    if let Some(storage) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
        let _ = storage.set_item(key, value);
    }
}

/// The browser's preferred languages, most preferred first.
pub fn browser_languages() -> Vec<String> {
    let Some(window) = web_sys::window() else {
        return Vec::new();
    };
    let langs = window.navigator().languages();
    let mut out: Vec<String> = langs.iter().filter_map(|v| v.as_string()).collect();
    if out.is_empty() {
        out.extend(window.navigator().language());
    }
    out
}

/// The browser's `User-Agent`.
pub fn user_agent() -> String {
    web_sys::window()
        .and_then(|w| w.navigator().user_agent().ok())
        .unwrap_or_default()
}

/// Sets `<html lang>` so screen readers and fonts pick the right language.
pub fn set_document_lang(lang: &str) {
    if let Some(root) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.document_element())
    {
        let _ = root.set_attribute("lang", lang);
    }
}

/// The element behind an event's target, if it is one.
pub fn event_element(target: Option<web_sys::EventTarget>) -> Option<web_sys::Element> {
    target.and_then(|t| t.dyn_into::<web_sys::Element>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_read_in_the_spellings_people_type() {
        assert_eq!(parse_hex("68 69 0a"), Ok(b"hi\n".to_vec()));
        assert_eq!(parse_hex("68690A"), Ok(b"hi\n".to_vec()));
        assert_eq!(parse_hex("0x68, 0x69,0x0a"), Ok(b"hi\n".to_vec()));
        assert_eq!(parse_hex("ff:00\n01"), Ok(vec![0xff, 0, 1]));
        assert_eq!(parse_hex("  "), Ok(Vec::new()));
        // `00` is a byte, not a prefix, when no `x` follows.
        assert_eq!(parse_hex("00"), Ok(vec![0]));
    }

    #[test]
    fn bad_hex_says_what_is_wrong() {
        assert_eq!(parse_hex("68 zz"), Err(HexError::NotHex('z', 3)));
        assert_eq!(parse_hex("6"), Err(HexError::OddDigits));
        assert_eq!(parse_hex("6 8"), Err(HexError::OddDigits));
        assert_eq!(parse_hex("686"), Err(HexError::OddDigits));
        assert_eq!(parse_hex("hi"), Err(HexError::NotHex('h', 0)));
        // The `x` of a prefix inside a byte is not hex.
        assert_eq!(parse_hex("60x1"), Err(HexError::NotHex('x', 2)));
    }

    #[test]
    fn hex_ascii_shows_both_views() {
        assert_eq!(hex_ascii(b"hi\n", 64), "68 69 0a  hi.");
        assert_eq!(hex_ascii(b"abc", 2), "61 62 \u{2026}  ab");
    }
}
