//! The page's Download: its own B/S session and a C/S card, each as the lesson-look text and as
//! JSON (`socklab-transcript/1`), really downloaded by headless Chromium into a directory the
//! test chooses (CDP `Browser.setDownloadBehavior`) at 360 px wide, one of them from the
//! keyboard, and compared with what the test sent. Same harness and skip rules as `browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with browser.rs; this file uses only part of it.
#[allow(dead_code)]
mod webdriver;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;
use socklab_protocol::{SessionKind, TRANSCRIPT_FORMAT, Transcript, TranscriptDir};
use socklab_tests::LineClient;
use webdriver::{Browser, PAGE_TIMEOUT, serve_page, setup};

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// Waits until Chromium has finished downloading `name` into `dir`; returns its text.
async fn downloaded(dir: &Path, name: &str) -> String {
    let path = dir.join(name);
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        // Chromium first reserves `<name>` as an empty file, writes `<name>.crdownload` and
        // renames it over the reservation when done. Every file this test downloads has text,
        // so an empty `<name>` or a `.crdownload` still present means "not yet".
        let pending = dir.join(format!("{name}.crdownload")).exists();
        if let Ok(text) = std::fs::read_to_string(&path)
            && !text.is_empty()
            && !pending
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{name} was not downloaded; {} holds {:?}",
            dir.display(),
            std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks a reply line of the lesson's look: `← [YYYY-MM-DD HH:MM:SS]:text`.
fn assert_reply_line(line: &str, text: &str) {
    let stamp = line
        .strip_prefix("← [")
        .and_then(|rest| rest.strip_suffix(&format!("]:{text}")))
        .unwrap_or_else(|| panic!("not a reply to {text:?}: {line:?}"));
    let digits = |r: std::ops::Range<usize>| stamp[r].bytes().all(|b| b.is_ascii_digit());
    assert_eq!(stamp.len(), 19, "{line}");
    assert!(
        digits(0..4) && digits(5..7) && digits(8..10) && digits(11..13),
        "{line}"
    );
    assert_eq!(
        (&stamp[4..5], &stamp[10..11], &stamp[13..14]),
        ("-", " ", ":"),
        "{line}"
    );
}

fn rfc3339(at: &str) {
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok(),
        "not RFC 3339: {at:?}"
    );
}

/// Sends `text` from the page and waits until the log has `replies` replies.
async fn send_from_page(browser: &Browser, text: &str, replies: usize) {
    browser.type_into("#bs-input", text).await;
    browser.type_into("#bs-input", ENTER).await;
    let script =
        format!("return document.querySelectorAll('#bs-log .entry.received').length >= {replies};");
    browser
        .wait_true(&script, &format!("the reply to {text:?}"))
        .await;
}

/// The B/S panel's download, as text (clicked) and as JSON (from the keyboard).
async fn check_bs(browser: &Browser, dir: &Path) {
    send_from_page(browser, "hello", 1).await;
    send_from_page(browser, "你好", 2).await;
    browser.click(".panel.bs .download .dl-txt").await;
    let text = downloaded(dir, "socklab-bs-ws.txt").await;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "→ hello");
    assert_reply_line(lines[1], "hello");
    assert_eq!(lines[2], "→ 你好");
    assert_reply_line(lines[3], "你好");

    // Keyboard: focus the .json button and press Enter.
    browser
        .js("document.querySelector('.panel.bs .download .dl-json').focus(); return null;")
        .await;
    browser.press(ENTER).await;
    let t: Transcript = serde_json::from_str(&downloaded(dir, "socklab-bs-ws.json").await).unwrap();
    assert_eq!(
        (t.format.as_str(), t.kind),
        (TRANSCRIPT_FORMAT, SessionKind::Ws)
    );
    assert!(t.target.ends_with("/ws"), "{}", t.target);
    assert!(!t.notes.is_empty());
    assert_eq!(t.messages.len(), 4, "{:#?}", t.messages);
    for (pair, sent) in t.messages.chunks(2).zip(["hello", "你好"]) {
        let (out, back) = (&pair[0], &pair[1]);
        assert_eq!(
            (out.dir, back.dir),
            (TranscriptDir::Sent, TranscriptDir::Received)
        );
        assert_eq!((out.text.as_str(), out.bytes), (sent, sent.len() as u64));
        assert_eq!(out.rtt_ms, None);
        assert!(back.text.ends_with(&format!("]:{sent}")), "{back:?}");
        assert_eq!(back.bytes, back.text.len() as u64);
        assert!(
            back.rtt_ms.is_some_and(|ms| (0.0..15_000.0).contains(&ms)),
            "{back:?}"
        );
        rfc3339(&out.at);
        rfc3339(&back.at);
    }
    // The text file is the JSON's text.
    assert_eq!(t.to_text(), text);
}

/// A C/S card's download: what the monitor showed, a long line's text cut but its size exact.
async fn check_cs(browser: &Browser, dir: &Path, id: u64) {
    let card = format!("#cs-sessions .session[data-session-id=\"{id}\"]");
    // Its counts and its messages come in the same events.
    browser
        .wait_for(
            &format!("{card}[data-bytes-in=\"310\"][data-bytes-out=\"354\"]"),
            "the raw client's four messages on its card",
        )
        .await;
    browser.click(&format!("{card} .download .dl-txt")).await;
    let name = format!("socklab-cs-tcp-{id}");
    let text = downloaded(dir, &format!("{name}.txt")).await;
    let lines: Vec<&str> = text.lines().collect();
    let long = "x".repeat(300);
    assert_eq!(lines.len(), 4, "{text}");
    assert_eq!(lines[0], "→ raw line");
    assert_reply_line(lines[1], "raw line");
    assert_eq!(lines[2], format!("→ {}…", &long[..200]));

    browser.click(&format!("{card} .download .dl-json")).await;
    let t: Transcript =
        serde_json::from_str(&downloaded(dir, &format!("{name}.json")).await).unwrap();
    assert_eq!((t.kind, t.session_id), (SessionKind::Tcp, Some(id)));
    assert!(
        t.notes.iter().any(|n| n.contains("preview")),
        "{:?}",
        t.notes
    );
    let m = &t.messages;
    assert_eq!(
        (m[0].dir, m[0].bytes, m[0].truncated),
        (TranscriptDir::Sent, 9, false)
    );
    assert_eq!(
        (m[2].bytes, m[2].truncated, m[2].text.len()),
        (301, true, 200)
    );
    // The reply to the long line: stamp + 300 x + \n, its size exact, its text cut.
    assert_eq!(
        (m[3].dir, m[3].bytes, m[3].truncated),
        (TranscriptDir::Received, 323, true)
    );
    let totals = t.totals.unwrap();
    assert_eq!((totals.bytes_sent, totals.bytes_received), (310, 31 + 323));
    assert_eq!(t.omitted, 0);
    for m in m {
        rfc3339(&m.at);
        assert_eq!(m.rtt_ms, None);
    }
}

#[tokio::test]
async fn the_page_downloads_its_bs_session_and_a_cs_card_as_text_and_json() {
    let Some(setup) = setup("the_page_downloads_its_bs_session_and_a_cs_card_as_text_and_json")
    else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 360, 800).await;
    let dir: PathBuf =
        std::env::temp_dir().join(format!("socklab-downloads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    browser
        .cdp(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": dir.display().to_string() }),
        )
        .await;
    browser.open_connected(&server).await;
    // On screen: what is exact in the download.
    let note = browser.text(".panel.bs .download .dl-note").await;
    assert!(note.contains("this browser"), "{note}");
    check_bs(&browser, &dir).await;

    let mut nc = LineClient::connect(server.addrs.tcp[0]).await;
    nc.send(b"raw line\n").await;
    let reply = nc.line().await;
    assert_eq!(reply.len(), 31);
    let id = server
        .registry
        .snapshot()
        .sessions
        .into_iter()
        .find(|s| s.kind == SessionKind::Tcp && s.via.is_none())
        .map(|s| s.id)
        .unwrap();
    // The card is drawn before the next exchange: its download must have what came later too.
    browser
        .wait_for(
            &format!("#cs-sessions .session[data-session-id=\"{id}\"][data-bytes-in=\"9\"]"),
            "the raw client's first line on its card",
        )
        .await;
    nc.send(format!("{}\n", "x".repeat(300)).as_bytes()).await;
    assert_eq!(nc.line().await.len(), 323);
    check_cs(&browser, &dir, id).await;
    // Nothing overflows the phone-wide page.
    let wide = browser
        .js("return document.documentElement.scrollWidth <= window.innerWidth;")
        .await;
    assert_eq!(wide, serde_json::Value::Bool(true));
    assert_eq!(browser.console_errors().await, Vec::<String>::new());
    browser.quit().await;
    let _ = std::fs::remove_dir_all(&dir);
    server.stop().await;
}
