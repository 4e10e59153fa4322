//! The page is usable by everyone: axe-core's WCAG 2.1 A/AA rules (and `region`: everything
//! inside a landmark) find nothing, in English and Chinese, at desktop and phone widths, in the
//! light and the dark colour scheme, with sessions on screen and the UDP panel in use; and
//! keyboard-only use works (Tab reaches the message box with a visible focus ring, Enter
//! sends). Same harness and skip rules as `browser.rs`; axe-core comes from `SOCKLAB_AXE`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with browser.rs; this file uses only part of it.
#[allow(dead_code)]
mod webdriver;

use serde_json::Value;
use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{LineClient, TIMEOUT};
use tokio::net::UdpSocket;
use webdriver::{ALSO, Browser, PAGE_TIMEOUT, WCAG_21_AA, axe_source, serve_page, setup};

/// WebDriver's Enter and Tab keys.
const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";

/// Switches the page to `code` (`en`/`zh-CN`) with its own toggle, unless it is there already.
async fn use_language(browser: &Browser, code: &str) {
    let is = format!("return document.documentElement.lang === '{code}';");
    if browser.js(&is).await != Value::Bool(true) {
        browser.click("#lang-toggle").await;
    }
    browser.wait_true(&is, &format!("the page in {code}")).await;
}

/// Something on every part of the page: a raw TCP and a UDP client on the C/S side, a message
/// and its reply in the B/S log, a datagram and its reply in the UDP panel.
async fn fill_the_page(browser: &Browser, server: &RunningServer) -> (LineClient, UdpSocket) {
    let mut tcp = LineClient::connect(server.addrs.tcp[0]).await;
    tcp.send(b"hello from a terminal\n").await;
    tcp.line().await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"dgram", server.addrs.udp[0]).await.unwrap();
    let mut buf = [0u8; 2048];
    tokio::time::timeout(TIMEOUT, udp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();

    browser.open(server.addrs.http[0]).await;
    browser
        .wait_for("#bs-status[data-status=open]", "the bridge to open")
        .await;
    browser.type_into("#bs-input", "hello from the page").await;
    browser.type_into("#bs-input", ENTER).await;
    browser
        .wait_for("#bs-log .entry.received", "the page's reply")
        .await;
    browser.click("a[href='#udp-panel']").await;
    browser
        .wait_for("#udp-status[data-status=open]", "the WebTransport session")
        .await;
    browser.click("#udp-send-one").await;
    browser.wait_for("#udp-last", "the datagram's reply").await;
    // Every card the page will draw, so that none comes in (fading in, its colours blended
    // with the panel's) while axe reads the page: the WebTransport session's UDP upstream
    // is announced a feed batch after the datagram's reply.
    for (css, what) in [
        (
            "#cs-sessions .session[data-kind=udp]:not(.bridged)",
            "the UDP client's card",
        ),
        (
            "#cs-sessions .session.bridged[data-kind=udp]",
            "the WebTransport session's upstream card",
        ),
        (
            "#cs-sessions .session[data-kind=tcp]:not(.bridged)",
            "the raw TCP client's card",
        ),
        (
            "#cs-sessions .session.bridged[data-kind=tcp]",
            "the bridge's upstream card",
        ),
    ] {
        browser.wait_for(css, what).await;
    }
    (tcp, udp)
}

/// axe on the page at 1366 and 360 px, in English and Chinese: one line per violation, each
/// prefixed with `scheme` (`""` or `"dark, "`) and where it was found.
async fn axe_at_both_widths_in_both_languages(
    browser: &Browser,
    axe: &str,
    scheme: &str,
) -> Vec<String> {
    let mut found = Vec::new();
    for (width, height) in [(1366, 900), (360, 800)] {
        browser
            .client
            .set_window_size(width, height)
            .await
            .expect("resize");
        for lang in ["en", "zh-CN"] {
            use_language(browser, lang).await;
            let violations = browser.axe_violations(axe, &WCAG_21_AA, &ALSO).await;
            eprintln!(
                "axe {scheme}at {width} px, {lang}: {} violation(s)",
                violations.len()
            );
            found.extend(
                violations
                    .into_iter()
                    .map(|v| format!("{scheme}{width} px, {lang}: {v}")),
            );
        }
    }
    found
}

#[tokio::test]
async fn axe_finds_no_wcag_21_aa_violation_in_either_language_at_1366_or_360_px() {
    let test = "axe_finds_no_wcag_21_aa_violation_in_either_language_at_1366_or_360_px";
    let Some(setup) = setup(test) else {
        return;
    };
    let Some(axe) = axe_source(test) else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    let _clients = fill_the_page(&browser, &server).await;

    let found = axe_at_both_widths_in_both_languages(&browser, &axe, "").await;
    assert!(found.is_empty(), "axe violations:\n{}", found.join("\n"));
    browser.quit().await;
    server.stop().await;
}

#[tokio::test]
async fn axe_finds_no_wcag_21_aa_violation_in_dark_mode() {
    let test = "axe_finds_no_wcag_21_aa_violation_in_dark_mode";
    let Some(setup) = setup(test) else {
        return;
    };
    let Some(axe) = axe_source(test) else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    // The system asks for dark colours: the page's `prefers-color-scheme: dark` palette.
    browser
        .cdp(
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }),
        )
        .await;
    let _clients = fill_the_page(&browser, &server).await;
    let dark = browser
        .js("return matchMedia('(prefers-color-scheme: dark)').matches;")
        .await;
    assert_eq!(dark, Value::Bool(true), "the dark scheme is emulated");

    let found = axe_at_both_widths_in_both_languages(&browser, &axe, "dark, ").await;
    assert!(found.is_empty(), "axe violations:\n{}", found.join("\n"));
    browser.quit().await;
    server.stop().await;
}

/// What the focused element looks like: its id, whether it matches `:focus-visible`, its
/// outline, and the contrast of the outline against the first opaque background behind it.
const FOCUS_PROBE: &str = r#"
const el = document.activeElement;
if (!el || el === document.body) return null;
const rgba = c => { const m = (c.match(/[\d.]+/g) || []).map(Number);
  return { r: m[0] || 0, g: m[1] || 0, b: m[2] || 0, a: m.length > 3 ? m[3] : 1 }; };
const lum = c => { const f = v => { v /= 255;
  return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
let bg = { r: 255, g: 255, b: 255, a: 1 };
for (let p = el.parentElement; p; p = p.parentElement) {
  const c = rgba(getComputedStyle(p).backgroundColor);
  if (c.a > 0.99) { bg = c; break; }
}
const cs = getComputedStyle(el);
const a = lum(rgba(cs.outlineColor)), b = lum(bg);
return { id: el.id, tag: el.tagName, text: (el.innerText || el.value || '').slice(0, 40),
  visible: el.matches(':focus-visible'), style: cs.outlineStyle,
  width: parseFloat(cs.outlineWidth), ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) };
"#;

#[tokio::test]
async fn keyboard_alone_reaches_the_message_box_with_a_visible_focus_and_enter_sends() {
    let Some(setup) =
        setup("keyboard_alone_reaches_the_message_box_with_a_visible_focus_and_enter_sends")
    else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    browser.open(server.addrs.http[0]).await;
    browser
        .wait_for("#bs-status[data-status=open]", "the bridge to open")
        .await;
    use_language(&browser, "en").await;

    // From the top of the page, Tab only, until the message box has focus.
    browser
        .js("document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); return null;")
        .await;
    let mut path = Vec::new();
    loop {
        browser.press(TAB).await;
        let focus = browser.js(FOCUS_PROBE).await;
        assert!(!focus.is_null(), "Tab left the page after {path:?}");
        let id = focus["id"].as_str().unwrap_or_default().to_string();
        path.push(format!("{}#{id} {:?}", focus["tag"], focus["text"]));
        // Every stop shows where focus is: a solid outline of at least 2 px with 3:1 contrast
        // against what is behind it (WCAG 2.4.7, and 1.4.11 for the ring itself).
        assert_eq!(focus["visible"], true, "not :focus-visible: {focus}");
        assert_ne!(focus["style"], "none", "no focus outline: {focus}");
        assert!(
            focus["width"].as_f64().unwrap_or(0.0) >= 2.0,
            "thin outline: {focus}"
        );
        assert!(
            focus["ratio"].as_f64().unwrap_or(0.0) >= 3.0,
            "faint outline: {focus}"
        );
        if id == "bs-input" {
            break;
        }
        assert!(path.len() < 30, "Tab never reached #bs-input: {path:#?}");
    }
    eprintln!("tab order to the message box: {path:#?}");

    browser.press("typed, not clicked").await;
    browser.press(ENTER).await;
    browser
        .wait_text(
            "#bs-log",
            PAGE_TIMEOUT,
            "the reply to the typed line",
            |t| t.contains("]:typed, not clicked"),
        )
        .await;
    browser.quit().await;
    server.stop().await;
}
