//! "Download": a session as a file, as text in the lesson's look (`→ hi` /
//! `← [time]:hi`) or as JSON (`socklab-transcript/1`, what `socklab-client --record` writes),
//! made in the page (a Blob and an object URL; nothing is asked of the server). The transcript
//! is built only when a button is pressed, so a busy log costs nothing meanwhile.

use socklab_protocol::Transcript;
use wasm_bindgen::{JsCast, JsValue};
use yew::prelude::*;

use crate::i18n::Lang;
use crate::services::json;

#[derive(Properties, PartialEq)]
pub struct DownloadProps {
    pub lang: Lang,
    /// The file name without its extension (`socklab-bs-ws`).
    pub name: AttrValue,
    /// What is exact in the download and what is not, in a few words (shown).
    pub note: AttrValue,
    /// Builds the transcript now.
    pub build: Callback<(), Transcript>,
}

/// The two buttons and the note.
#[component]
pub fn Download(props: &DownloadProps) -> Html {
    let l = props.lang;
    let error = use_state(|| None::<String>);
    let save = |text: bool| {
        let (build, name, error) = (props.build.clone(), props.name.clone(), error.clone());
        Callback::from(move |_: MouseEvent| {
            let t = build.emit(());
            let saved = if text {
                save_file(
                    &format!("{name}.txt"),
                    "text/plain;charset=utf-8",
                    &t.to_text(),
                )
            } else {
                json::stringify_pretty(&json::transcript(&t))
                    .and_then(|json| save_file(&format!("{name}.json"), "application/json", &json))
            };
            error.set(
                saved
                    .err()
                    .map(|e| e.as_string().unwrap_or_else(|| format!("{e:?}"))),
            );
        })
    };
    html! {
        <div class="download" role="group" aria-label={l.t("Download this session", "下载本会话记录")}>
            <span class="dl-title" aria-hidden="true">{ l.t("Download", "下载") }</span>
            <button type="button" class="btn ghost small dl-txt" onclick={save(true)}
                aria-label={l.t("Download .txt: one line per message, as in the lesson", "下载 .txt：每条消息一行，同课程里的样子")}>
                { ".txt" }
            </button>
            <button type="button" class="btn ghost small dl-json" onclick={save(false)}
                aria-label={l.t("Download .json: time, direction, bytes, round trip", "下载 .json：时间、方向、字节数、往返时间")}>
                { ".json" }
            </button>
            <span class="dl-note">{ props.note.clone() }</span>
            if let Some(e) = &*error {
                <span class="dl-error" role="status">{ format!("{}: {e}", l.t("Download failed", "下载失败")) }</span>
            }
        </div>
    }
}

/// Offers `content` as the file `name`: a Blob, an object URL, a click on a link to it.
fn save_file(name: &str, mime: &str, content: &str) -> Result<(), JsValue> {
    let parts = js_sys::Array::of1(&JsValue::from_str(content));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob)?;
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a")?.dyn_into()?;
    link.set_href(&url);
    link.set_download(name);
    link.click();
    // The click has handed the URL to the download by the next task.
    gloo_timers::callback::Timeout::new(1_000, move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    })
    .forget();
    Ok(())
}

/// Now, RFC 3339 (UTC, milliseconds).
pub fn iso_now() -> String {
    String::from(js_sys::Date::new_0().to_iso_string())
}

/// A `performance.now()` reading as RFC 3339 (UTC, milliseconds): the page's time origin plus
/// the reading.
pub fn iso_of_now_ms(now_ms: f64) -> String {
    let origin = web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.time_origin());
    let date = js_sys::Date::new(&JsValue::from_f64(origin + now_ms));
    String::from(date.to_iso_string())
}
