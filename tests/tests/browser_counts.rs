//! The C/S panel's counters are exact from the first frame: a page opened after a raw client
//! has talked shows that client's bytes so far (the snapshot's counts), not zero, and keeps
//! counting each later message once; each session card's `data-` attributes carry the same
//! numbers as its text; a full card rewrites its oldest rows for new messages instead of
//! building new ones. Same harness and skip rules as `browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with browser.rs; this file uses only part of it.
#[allow(dead_code)]
mod webdriver;

use std::time::Duration;

use serde_json::Value;
use socklab_protocol::SessionKind;
use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{LineClient, TIMEOUT};
use webdriver::{Browser, PAGE_TIMEOUT, serve_page, setup};

/// Sends `lines` one at a time, each after the previous reply; returns (bytes sent, bytes
/// received).
async fn exchange(client: &mut LineClient, lines: &[&str]) -> (u64, u64) {
    let (mut sent, mut got) = (0, 0);
    for line in lines {
        client.send(line.as_bytes()).await;
        sent += line.len() as u64;
        got += client.line().await.len() as u64;
    }
    (sent, got)
}

/// The one raw TCP session's id, once the server has counted `replies` replies on it (a reply
/// is counted when written, which can be just after the client read it).
async fn raw_session_after(server: &RunningServer, replies: u64) -> u64 {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let counted = server.registry.snapshot().sessions.into_iter().find(|s| {
                s.kind == SessionKind::Tcp && s.via.is_none() && s.messages_out >= replies
            });
            if let Some(s) = counted {
                return s.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server counts the replies")
}

/// The card's `data-` attributes and its `↑… ↓…` text.
async fn card(browser: &Browser, id: u64) -> Value {
    browser
        .js(&format!(
            "const c = document.querySelector('#cs-sessions .session[data-session-id=\"{id}\"]'); \
             if (!c) return null; \
             return {{ kind: c.dataset.kind, bytesIn: c.dataset.bytesIn, \
             bytesOut: c.dataset.bytesOut, text: c.querySelector('.s-bytes').innerText }};"
        ))
        .await
}

/// Waits until the card shows `bytes_in`/`bytes_out`; returns what it shows.
async fn wait_card(browser: &Browser, id: u64, bytes_in: u64, bytes_out: u64) -> Value {
    let want = (bytes_in.to_string(), bytes_out.to_string());
    let deadline = std::time::Instant::now() + PAGE_TIMEOUT;
    loop {
        let c = card(browser, id).await;
        if c["bytesIn"] == want.0.as_str() && c["bytesOut"] == want.1.as_str() {
            return c;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "card #{id} never showed ↑{} ↓{}; last: {c}",
            want.0,
            want.1
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_page_opened_later_shows_a_raw_clients_exact_bytes_so_far() {
    let Some(setup) = setup("a_page_opened_later_shows_a_raw_clients_exact_bytes_so_far") else {
        return;
    };
    let server = serve_page(&setup).await;
    let mut nc = LineClient::connect(server.addrs.tcp[0]).await;
    let (sent, got) = exchange(&mut nc, &["one\n", "two two\n", "三三三\n"]).await;
    let id = raw_session_after(&server, 3).await;

    let browser = Browser::start(&setup, 1366, 900).await;
    browser.open(server.addrs.http[0]).await;
    browser
        .wait_for(
            &format!("#cs-sessions .session[data-session-id=\"{id}\"]"),
            "the raw client's card",
        )
        .await;
    // The first frame with the card already has the counts: no waiting for them to grow.
    let first = card(&browser, id).await;
    assert_eq!(first["kind"], "tcp", "{first}");
    assert_eq!(first["bytesIn"], sent.to_string().as_str(), "{first}");
    assert_eq!(first["bytesOut"], got.to_string().as_str(), "{first}");
    assert_eq!(
        first["text"],
        format!("↑{sent} B ↓{got} B").as_str(),
        "{first}"
    );

    // A message after the page opened is counted once, on top of the snapshot.
    let (more_in, more_out) = exchange(&mut nc, &["four\n"]).await;
    let after = wait_card(&browser, id, sent + more_in, got + more_out).await;
    assert_eq!(
        after["text"],
        format!("↑{} B ↓{} B", sent + more_in, got + more_out).as_str(),
        "{after}"
    );
    browser.quit().await;
    server.stop().await;
}

/// The texts of the message rows of card `id`, oldest first; each row not yet marked is
/// marked, so [`unmarked_rows`] can tell a row rewritten in place from one built anew.
async fn mark_rows(browser: &Browser, id: u64) -> Vec<String> {
    let rows = browser
        .js(&format!(
            "return Array.from(document.querySelectorAll(\
             '#cs-sessions .session[data-session-id=\"{id}\"] .s-msgs > li'))\
             .map(li => {{ li.socklabMark = true; return li.querySelector('.msg').innerText; }});"
        ))
        .await;
    serde_json::from_value(rows).expect("row texts")
}

/// How many message rows of card `id` were not there when [`mark_rows`] last ran.
async fn unmarked_rows(browser: &Browser, id: u64) -> u64 {
    browser
        .js(&format!(
            "return Array.from(document.querySelectorAll(\
             '#cs-sessions .session[data-session-id=\"{id}\"] .s-msgs > li'))\
             .filter(li => !li.socklabMark).length;"
        ))
        .await
        .as_u64()
        .expect("a count")
}

/// A card keeps its newest 20 messages. Once it has them, a new message moves its oldest row
/// to the end and rewrites it: the page builds no new elements for a busy client's messages.
#[tokio::test]
async fn a_full_card_rewrites_its_oldest_rows_for_new_messages() {
    let Some(setup) = setup("a_full_card_rewrites_its_oldest_rows_for_new_messages") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    browser.open(server.addrs.http[0]).await;
    // The feed shows messages from when it is live: the snapshot carries counts, not lines.
    browser.wait_feed_live().await;
    let mut nc = LineClient::connect(server.addrs.tcp[0]).await;
    let lines: Vec<String> = (0..15).map(|i| format!("m{i}\n")).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let (sent, got) = exchange(&mut nc, &lines[..12]).await;
    let id = raw_session_after(&server, 12).await;
    wait_card(&browser, id, sent, got).await;
    let rows = mark_rows(&browser, id).await;
    assert_eq!(
        rows.len(),
        20,
        "a card shows its newest 20 messages: {rows:?}"
    );
    assert!(rows[0].starts_with("m2"), "{rows:?}");

    let (more_in, more_out) = exchange(&mut nc, &lines[12..]).await;
    wait_card(&browser, id, sent + more_in, got + more_out).await;
    assert_eq!(
        unmarked_rows(&browser, id).await,
        0,
        "rows of the three new messages (six rows) were built anew, not rewritten"
    );
    let rows = mark_rows(&browser, id).await;
    assert_eq!(rows.len(), 20, "{rows:?}");
    assert!(rows[0].starts_with("m5"), "the oldest rows went: {rows:?}");
    assert!(
        rows[19].contains("m14"),
        "the newest reply is last: {rows:?}"
    );
    browser.quit().await;
    server.stop().await;
}
