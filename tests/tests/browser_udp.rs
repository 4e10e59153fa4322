//! B/S over UDP end to end: the real page in headless Chromium sends WebTransport datagrams
//! through the server's gateway to the UDP echo (no extra Chromium flags: `http://127.0.0.1`
//! is a secure context, and the server's 13-day ECDSA certificate is trusted through
//! `serverCertificateHashes`). Same harness and skip rules as `browser.rs`.

// Shared with browser.rs; this file uses only part of it.
#[allow(dead_code)]
mod webdriver;

use socklab_tests::assert_stamped;
use socklab_tests::socklab_server::RunningServer;
use webdriver::{Browser, PAGE_TIMEOUT, screenshot_dir, serve_page_with, setup};

async fn open_udp(browser: &Browser, server: &RunningServer) {
    browser.open(server.addrs.http[0]).await;
    browser
        .wait_for(
            "#udp-status[data-status=open]",
            "the WebTransport session to open",
        )
        .await;
}

#[tokio::test]
async fn a_datagram_from_the_page_comes_back_stamped() {
    let Some(setup) = setup("a_datagram_from_the_page_comes_back_stamped") else {
        return;
    };
    let server = serve_page_with(&setup, |c| c.udp_drop = 0.0).await;
    let browser = Browser::start(&setup, 1280, 1000).await;
    open_udp(&browser, &server).await;
    // UDP may lose a datagram, even on loopback (rarely: a slow machine, a full queue), and
    // the page then says so: a loss shown is a reason to send again, up to three times.
    // Each datagram's text has the time to the millisecond, so a loss shown is this one's.
    let mut answered = false;
    let mut last_lost = String::new();
    for _ in 0..3 {
        browser.click("#udp-send-one").await;
        let script = format!(
            "const lost = document.querySelector('#udp-last-lost'); \
             return document.querySelector('#udp-last .msg') !== null \
                 || (lost !== null && lost.textContent !== {});",
            serde_json::json!(last_lost)
        );
        browser
            .wait_true(&script, "the datagram's reply or its loss")
            .await;
        last_lost = browser
            .js("const e = document.querySelector('#udp-last-lost'); return e ? e.textContent : '';")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if last_lost.is_empty() {
            answered = true;
            break;
        }
    }
    assert!(answered, "three datagrams in a row shown lost");
    let reply = browser.text("#udp-panel").await;
    let line = browser.text("#udp-last .msg").await;
    let payload = line.split_once("]:").map(|(_, p)| p).unwrap_or_default();
    assert!(payload.starts_with("hello over UDP"), "{reply:?}");
    assert_stamped(line.as_bytes(), payload.as_bytes());

    // A burst: over WebSocket all 20 come back, in order; over UDP, see below.
    browser.click("#udp-send-burst").await;
    browser
        .wait_for("#udp-burst[data-done=true]", "the UDP burst to finish")
        .await;
    // The WebSocket run ends when all its replies are back, however long the datagrams wait.
    browser
        .wait_for(
            "#ws-burst[data-back='20'][data-done=true]",
            "the WebSocket burst's replies",
        )
        .await;
    let ws = browser.text("#ws-burst").await;
    assert!(ws.contains("20/20") && ws.contains("in order"), "{ws:?}");
    // The UDP summary must agree with the cells: `back/20`, and every datagram not back is
    // shown lost. QUIC datagrams are unreliable even on loopback (Chromium may drop one from a
    // full send queue), so at least one must come back, not necessarily all.
    let udp = browser.text("#udp-burst").await;
    let counts = browser
        .js("const b = document.querySelector('#udp-burst'); \
             return [b.dataset.sent, b.dataset.back];")
        .await;
    let sent: usize = counts[0].as_str().unwrap().parse().unwrap();
    let back: usize = counts[1].as_str().unwrap().parse().unwrap();
    assert_eq!(sent, 20, "{udp:?}");
    assert!(back >= 1, "no datagram came back: {udp:?}");
    assert!(udp.contains(&format!(": {back}/20 ")), "{udp:?}");
    let lost = browser.texts("#udp-burst .cell.lost").await.len();
    assert_eq!(lost, 20 - back, "{udp:?}");
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.quit().await;
    server.stop().await;
}

#[tokio::test]
async fn with_udp_drop_the_page_shows_lost_datagrams() {
    let Some(setup) = setup("with_udp_drop_the_page_shows_lost_datagrams") else {
        return;
    };
    let server = serve_page_with(&setup, |c| c.udp_drop = 50.0).await;
    let browser = Browser::start(&setup, 1280, 1000).await;
    open_udp(&browser, &server).await;
    browser
        .wait_text("#udp-drop-note", PAGE_TIMEOUT, "the drop note", |t| {
            t.contains("50%")
        })
        .await;
    browser.click("#udp-send-burst").await;
    browser
        .wait_for("#udp-burst[data-done=true]", "the UDP burst to finish")
        .await;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    browser
        .screenshot(&dir.join("udp-panel.png"), 1280, 1000, true)
        .await;
    let lost = browser.texts("#udp-burst .cell.lost").await.len();
    assert!(
        (1..20).contains(&lost),
        "with --udp-drop 50, {lost} of 20 lost"
    );
    browser.quit().await;
    server.stop().await;
}
