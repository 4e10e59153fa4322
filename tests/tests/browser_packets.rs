//! The Packets view (`--capture`): a raw TCP client says `hi\n` and reads its stamp; its card's
//! Packets view shows the real packets as a ladder (SYN, SYN-ACK, ACK, then a segment of 3
//! bytes), each row opening into its layers, and a Download .pcap link to
//! `/api/sessions/{id}/pcap` that gives a pcap file; a UDP peer's card shows datagrams and
//! no handshake; the B/S panel has ladders for the page's WebSocket and the bridge's TCP hop.
//! On a 360 px screen, with no axe violations. Without capture, the view says how to turn it
//! on.
//!
//! Capture needs root or CAP_NET_RAW: without it the capture test is a recorded skip locally
//! and a failure under CI (which runs as root). Same browser harness as `browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with browser.rs; this file uses only part of it.
#[allow(dead_code)]
mod webdriver;

use std::time::Duration;

use serde_json::{Value, json};
use socklab_protocol::{ServerInfo, SessionKind};
use socklab_tests::http;
use socklab_tests::skip::{Need, skip_unless_required};
use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{LineClient, TIMEOUT, assert_stamped};
use tokio::net::UdpSocket;
use webdriver::{
    ALSO, Browser, PAGE_TIMEOUT, Setup, WCAG_21_AA, axe_source, serve_page_with, setup,
};

/// The page's server, with `--capture` as asked.
async fn capture_on(server: &RunningServer) -> bool {
    let response = http::get(server.addrs.http[0], "/api/info", &[]).await;
    assert_eq!(response.status, 200);
    let info: ServerInfo = serde_json::from_slice(&response.body).unwrap();
    info.capture
}

/// A `--capture` server and the page open on it at `width`×`height`, once its feed carries
/// packets and shows this page's own session: from then on no packet is missed. `None` (after
/// `skip_unless_required`) where this process may not capture.
async fn capturing_page(
    test: &str,
    setup: &Setup,
    width: u32,
    height: u32,
) -> Option<(RunningServer, Browser)> {
    let server = serve_page_with(setup, |c| c.capture = true).await;
    if !capture_on(&server).await {
        server.stop().await;
        skip_unless_required(
            test,
            Need::Capture,
            "no root or CAP_NET_RAW to capture packets",
        );
        return None;
    }
    let browser = Browser::start(setup, width, height).await;
    browser.open(server.addrs.http[0]).await;
    browser
        .wait_true(
            "return document.querySelector('section.panel.cs')?.dataset.packets === 'true' \
             && !!document.querySelector('[data-packets-for=\"bs\"]');",
            "the feed with packets and this page's own session",
        )
        .await;
    Some((server, browser))
}

/// The one raw session of `kind` (no `via`), once the server knows it.
async fn raw_session(server: &RunningServer, kind: SessionKind) -> u64 {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let raw = server
                .registry
                .snapshot()
                .sessions
                .into_iter()
                .find(|s| s.kind == kind && s.via.is_none());
            if let Some(s) = raw {
                return s.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the server registers the raw client")
}

/// The ladder rows of session `id`'s card: each row's label and payload length.
async fn ladder(browser: &Browser, id: u64) -> Value {
    browser
        .js(&format!(
            "return [...document.querySelectorAll('.session[data-session-id=\"{id}\"] \
             .ladder .pkt')].map(r => [r.dataset.label, Number(r.dataset.len)]);"
        ))
        .await
}

/// Waits until session `id`'s ladder has SYN, SYN-ACK, ACK (in that order) and a 3-byte
/// segment after them; returns the labels.
async fn wait_ladder(browser: &Browser, id: u64) -> Vec<String> {
    let deadline = std::time::Instant::now() + PAGE_TIMEOUT;
    loop {
        let rows = ladder(browser, id).await;
        let rows: Vec<(String, u64)> = serde_json::from_value(rows).unwrap_or_default();
        let at = |label: &str| rows.iter().position(|(l, _)| l == label);
        let data = rows.iter().position(|(_, len)| *len == 3);
        if let (Some(syn), Some(synack), Some(ack), Some(data)) =
            (at("SYN"), at("SYN-ACK"), at("ACK"), data)
        {
            assert!(syn < synack && synack < ack && ack < data, "{rows:?}");
            return rows.into_iter().map(|(l, _)| l).collect();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "session {id}'s ladder never showed the handshake and `hi\\n`: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_raw_clients_packets_show_as_a_ladder_with_a_pcap_to_download() {
    let test = "a_raw_clients_packets_show_as_a_ladder_with_a_pcap_to_download";
    let Some(setup) = setup(test) else { return };
    let Some(axe) = axe_source(test) else { return };
    let Some((server, browser)) = capturing_page(test, &setup, 360, 800).await else {
        return;
    };

    let mut nc = LineClient::connect(server.addrs.tcp[0]).await;
    nc.send(b"hi\n").await;
    let reply = nc.line().await;
    assert_stamped(&reply, b"hi\n");
    let id = raw_session(&server, SessionKind::Tcp).await;
    let card = format!(".session[data-session-id=\"{id}\"]");
    open_packets(&browser, &card, "the card's Packets button").await;
    let labels = wait_ladder(&browser, id).await;
    assert!(labels.iter().any(|l| l == "PSH/ACK len 3"), "{labels:?}");

    assert_a_row_opens_into_its_layers(&browser, &card).await;
    assert_the_pcap_link_gives_a_pcap(&browser, &card, id).await;
    assert_fits_360_px_and_passes_axe(&browser, &axe).await;

    // A UDP peer: datagrams, no handshake.
    let (_udp, uid) = udp_peer(&server).await;
    let ucard = format!(".session[data-session-id=\"{uid}\"]");
    open_packets(&browser, &ucard, "the UDP card's Packets button").await;
    browser
        .wait_true(
            &format!(
                "const rows = [...document.querySelectorAll('{ucard} .pkt')]\
                 .map(r => r.dataset.label); \
                 return rows.length >= 2 && rows.every(l => l.startsWith('UDP len'));"
            ),
            "the UDP session's datagrams, with no handshake",
        )
        .await;
    // A new card in the list leaves an open view open.
    let still_open = browser
        .js(&format!(
            "return !!document.querySelector('{card} .ladder');"
        ))
        .await;
    assert_eq!(
        still_open, true,
        "the TCP card's ladder closed when the UDP card came"
    );

    assert_two_bs_ladders(&browser).await;
    // For a reviewer's eyes: the page at 360 px with the three ladders open.
    screenshot_for_review(&browser, "packets-360.png", 360, 800).await;

    drop(nc);
    browser.quit().await;
    server.stop().await;
}

/// Waits for the Packets button of the session card `card` (`what`), and opens its view.
async fn open_packets(browser: &Browser, card: &str, what: &str) {
    browser
        .wait_for(&format!("{card} .pkts-toggle"), what)
        .await;
    browser.click(&format!("{card} .pkts-toggle")).await;
}

/// A row opens into its layers.
async fn assert_a_row_opens_into_its_layers(browser: &Browser, card: &str) {
    browser
        .click(&format!("{card} .pkt[data-len=\"3\"] summary"))
        .await;
    let layers = browser
        .text(&format!("{card} .pkt[data-len=\"3\"] .layers"))
        .await;
    for part in ["IPv4", "TCP", "B", "hi\\n", "68 69 0a"] {
        assert!(layers.contains(part), "{part:?} not in {layers:?}");
    }
}

/// The download link: the session's pcap, a real pcap file.
async fn assert_the_pcap_link_gives_a_pcap(browser: &Browser, card: &str, id: u64) {
    let link = browser
        .js(&format!(
            "const a = document.querySelector('{card} a.pcap'); \
             return {{ path: new URL(a.href).pathname, download: a.hasAttribute('download') }};"
        ))
        .await;
    assert_eq!(
        link,
        json!({ "path": format!("/api/sessions/{id}/pcap"), "download": true })
    );
    let magic = browser
        .js_async(
            &format!(
                "const done = arguments[arguments.length - 1]; \
                 fetch(document.querySelector('{card} a.pcap').href) \
                 .then(r => r.arrayBuffer()) \
                 .then(b => done([...new Uint8Array(b, 0, 4)].map(x => x.toString(16).padStart(2, '0')).join(''))) \
                 .catch(e => done(String(e)));"
            ),
            vec![],
        )
        .await;
    let magic = magic.as_str().unwrap_or_default().to_string();
    assert!(
        ["d4c3b2a1", "a1b2c3d4", "4d3cb2a1", "a1b23c4d"].contains(&magic.as_str()),
        "not a pcap: {magic}"
    );
}

/// 360 px: nothing wider than the screen; and the open view passes axe.
async fn assert_fits_360_px_and_passes_axe(browser: &Browser, axe: &str) {
    let overflow = browser
        .js("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "overflows by {overflow} px"
    );
    let violations = browser.axe_violations(axe, &WCAG_21_AA, &ALSO).await;
    assert!(violations.is_empty(), "{violations:#?}");
}

/// A UDP peer that sent `hi\n` and got its reply, and its session's id (keep the socket).
async fn udp_peer(server: &RunningServer) -> (UdpSocket, u64) {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"hi\n", server.addrs.udp[0]).await.unwrap();
    let mut buf = [0u8; 256];
    tokio::time::timeout(TIMEOUT, udp.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let uid = raw_session(server, SessionKind::Udp).await;
    (udp, uid)
}

/// The B/S side: this page's WebSocket session and the bridge's TCP hop, each with its pcap.
async fn assert_two_bs_ladders(browser: &Browser) {
    browser
        .click("[data-packets-for=\"bs\"] .pkts-toggle")
        .await;
    browser
        .wait_true(
            "return document.querySelectorAll('[data-packets-for=\"bs\"] .ladder a.pcap')\
             .length === 2;",
            "two B/S ladders (WebSocket and TCP hop)",
        )
        .await;
}

/// Saves a full-page screenshot `name` at `width`×`height` for a reviewer.
async fn screenshot_for_review(browser: &Browser, name: &str, width: u32, height: u32) {
    let dir = webdriver::screenshot_dir();
    std::fs::create_dir_all(&dir).unwrap();
    browser
        .screenshot(&dir.join(name), width, height, true)
        .await;
}

#[tokio::test]
async fn without_capture_the_view_says_how_to_turn_it_on() {
    let Some(setup) = setup("without_capture_the_view_says_how_to_turn_it_on") else {
        return;
    };
    let server = serve_page_with(&setup, |c| c.capture = false).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    browser.open(server.addrs.http[0]).await;
    browser
        .wait_for(
            "[data-packets-for=\"bs\"] .pkts-toggle",
            "the B/S Packets button",
        )
        .await;
    browser
        .click("[data-packets-for=\"bs\"] .pkts-toggle")
        .await;
    let text = browser.text("[data-packets-for=\"bs\"] .pkts-off").await;
    assert!(
        text.contains("sudo setcap cap_net_raw+ep target/release/socklab-server")
            && text.contains("--capture"),
        "{text}"
    );
    browser.quit().await;
    server.stop().await;
}

/// A TCP/IPv4 packet of a pcap file (link type RAW): its ports, the first payload byte, and
/// its length on the wire.
#[derive(Debug)]
struct Wire {
    src: u16,
    dst: u16,
    first: Option<u8>,
    len: usize,
}

/// The TCP/IPv4 packets of a pcap file, in order (the header's magic gives the byte order).
fn pcap_packets(file: &[u8]) -> Vec<Wire> {
    let little = file[..4] == [0xd4, 0xc3, 0xb2, 0xa1] || file[..4] == [0x4d, 0x3c, 0xb2, 0xa1];
    let u32_at = |at: usize| {
        let b: [u8; 4] = file[at..at + 4].try_into().unwrap();
        (if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }) as usize
    };
    let (mut at, mut out) = (24, Vec::new());
    while at + 16 <= file.len() {
        let (kept, len) = (u32_at(at + 8), u32_at(at + 12));
        let p = &file[at + 16..at + 16 + kept];
        at += 16 + kept;
        if p[0] >> 4 != 4 || p[9] != 6 {
            continue;
        }
        let ip = usize::from(p[0] & 0x0f) * 4;
        let tcp = usize::from(p[ip + 12] >> 4) * 4;
        let port = |i: usize| u16::from_be_bytes([p[ip + i], p[ip + i + 1]]);
        out.push(Wire {
            src: port(0),
            dst: port(2),
            first: (len > ip + tcp).then(|| p[ip + tcp]),
            len,
        });
    }
    out
}

/// The teaching strip's rows, in order, as a JS expression: whether each is measured, and its
/// bytes.
const STRIP_ROWS: &str = "[...document.querySelectorAll('#wire-bytes .packet-row')]\
                          .map(r => [r.dataset.measured === 'true', Number(r.dataset.bytes)])";

#[tokio::test]
async fn the_teaching_strip_shows_this_pages_own_packets_as_measured() {
    let test = "the_teaching_strip_shows_this_pages_own_packets_as_measured";
    let Some(setup) = setup(test) else { return };
    let Some((server, browser)) = capturing_page(test, &setup, 1366, 900).await else {
        return;
    };
    // Before any message: the example, every row computed.
    let before = strip_rows(&browser).await;
    assert!(before.iter().all(|(m, _)| !m), "{before:?}");

    browser.type_into("#bs-input", "measure me").await;
    browser.type_into("#bs-input", "\u{E007}").await;
    browser
        .wait_true(
            &format!("return {STRIP_ROWS}.filter(r => r[0]).length === 4;"),
            "the four B/S rows measured",
        )
        .await;
    let after = strip_rows(&browser).await;
    // C/S first (this page has no raw client: computed), then B/S, all measured.
    let measured: Vec<bool> = after.iter().map(|(m, _)| *m).collect();
    assert_eq!(measured, [false, false, true, true, true, true]);
    let text = browser.text("#wire-bytes .wire-source").await;
    assert!(
        text.contains("measured") && text.contains("computed"),
        "{text}"
    );

    // Each measured row is the length on the wire of the newest data segment that went its
    // way, in the page's WebSocket session's pcap (which holds the bridge's TCP hop too).
    let packets = page_ws_pcap(&server).await;
    let expected = newest_data_lengths(&server, &packets);
    let shown: Vec<usize> = after[2..].iter().map(|(_, b)| *b).collect();
    assert_eq!(shown, expected, "B/S rows vs the pcap: {packets:#?}");

    // For a reviewer's eyes: the strip with its measured rows.
    screenshot_for_review(&browser, "teaching-measured.png", 1366, 900).await;
    browser.quit().await;
    server.stop().await;
}

/// The teaching strip's rows now: (measured, bytes) each.
async fn strip_rows(browser: &Browser) -> Vec<(bool, usize)> {
    serde_json::from_value(browser.js(&format!("return {STRIP_ROWS};")).await).unwrap()
}

/// The packets of the page's WebSocket session's pcap, from the server's API.
async fn page_ws_pcap(server: &RunningServer) -> Vec<Wire> {
    let ws = server
        .registry
        .snapshot()
        .sessions
        .into_iter()
        .find(|s| s.kind == SessionKind::Ws)
        .expect("the page's WebSocket session")
        .id;
    let pcap = http::get(
        server.addrs.http[0],
        &format!("/api/sessions/{ws}/pcap"),
        &[],
    )
    .await;
    assert_eq!(pcap.status, 200);
    pcap_packets(&pcap.body)
}

/// The wire lengths of the newest data segments page→bridge, bridge→echo, echo→bridge and
/// bridge→page, in `packets`.
fn newest_data_lengths(server: &RunningServer, packets: &[Wire]) -> [usize; 4] {
    let (http_port, echo) = (server.addrs.http[0].port(), server.addrs.tcp[0].port());
    // A WebSocket data frame's first byte has an opcode below 8 (pings and pongs: 8 and up).
    let newest = |way: &dyn Fn(&Wire) -> bool, websocket: bool| {
        packets
            .iter()
            .rev()
            .find(|p| way(p) && p.first.is_some_and(|b| !websocket || b & 0x0f < 8))
            .unwrap_or_else(|| panic!("no such packet in {packets:#?}"))
            .len
    };
    [
        newest(&|p| p.dst == http_port, true),
        newest(&|p| p.dst == echo, false),
        newest(&|p| p.src == echo, false),
        newest(&|p| p.src == http_port, true),
    ]
}
