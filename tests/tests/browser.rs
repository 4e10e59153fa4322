//! The page end to end: the real Trunk build (`SOCKLAB_DIST`) served by the real server, in
//! real headless Chromium driven over WebDriver (see `webdriver/mod.rs` for the harness and for
//! when these tests skip).
#![allow(clippy::unwrap_used, clippy::expect_used)]

// Shared with the other browser test files; the accessibility helpers are theirs.
#[allow(dead_code)]
mod webdriver;

use std::path::Path;
use std::time::{Duration, Instant};

use socklab_tests::socklab_server::RunningServer;
use socklab_tests::{LineClient, assert_stamped, start_server_with};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use webdriver::{Browser, PAGE_TIMEOUT, screenshot_dir, serve_page, setup};

/// WebDriver's Enter key.
const ENTER: &str = "\u{E007}";

/// Sends `text` from the page's input with Enter and returns the stamped reply's text.
async fn send_from_page(browser: &Browser, text: &str) -> String {
    browser.type_into("#bs-input", text).await;
    browser.type_into("#bs-input", ENTER).await;
    let replies = "#bs-log .entry.received .msg";
    let deadline = Instant::now() + PAGE_TIMEOUT;
    loop {
        if let Some(reply) = browser
            .texts(replies)
            .await
            .into_iter()
            .find(|r| r.ends_with(&format!("]:{text}")))
        {
            return reply;
        }
        assert!(
            Instant::now() < deadline,
            "no reply to {text:?} in the log; log: {:?}",
            browser.texts("#bs-log .entry").await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Now as milliseconds since the Unix epoch, the clock the page's `Date.now()` reads.
fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
        * 1000.0
}

async fn assert_no_console_errors(browser: &Browser) {
    let errors = browser.console_errors().await;
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[tokio::test]
async fn typing_a_message_and_pressing_enter_shows_the_stamped_reply() {
    let Some(setup) = setup("typing_a_message_and_pressing_enter_shows_the_stamped_reply") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;
    assert_the_console_probe_works(&browser).await;
    assert_server_info_fetched_once(&browser).await;

    let reply = send_from_page(&browser, "hello from chromium").await;
    assert_stamped(reply.as_bytes(), b"hello from chromium");
    assert_the_log_says_who_what_size_and_rtt(&browser).await;
    shift_enter_makes_two_lines_with_two_replies(&browser).await;
    assert_the_filter_keeps_only_matching_messages(&browser).await;
    assert_the_page_marks_its_upstream_session(&browser).await;

    assert_no_console_errors(&browser).await;
    browser.quit().await;
    server.stop().await;
}

/// The console probe works (so "no console errors" means something), and is emptied.
async fn assert_the_console_probe_works(browser: &Browser) {
    browser.js("console.error('probe'); return null;").await;
    let probe = browser.console_errors().await;
    assert!(probe.iter().any(|e| e.contains("probe")), "{probe:?}");
}

/// The server info is fetched once at load, not again when the monitor feed first opens.
async fn assert_server_info_fetched_once(browser: &Browser) {
    browser
        .wait_for("#server-pill.ok", "the monitor feed live")
        .await;
    let info_fetches = browser
        .js("return performance.getEntriesByType('resource').filter((e) => new URL(e.name).pathname.endsWith('/api/info')).length;")
        .await;
    assert_eq!(info_fetches, 1, "GET /api/info at load");
}

/// The log says who sent what, how big it was, and how long the round trip took.
async fn assert_the_log_says_who_what_size_and_rtt(browser: &Browser) {
    let sent = browser.text("#bs-log .entry.sent").await;
    assert!(
        sent.contains("hello from chromium") && sent.contains("19 B"),
        "{sent:?}"
    );
    let received = browser.text("#bs-log .entry.received").await;
    assert!(received.contains("ms"), "no round-trip time: {received:?}");
    browser
        .wait_text(".stats", PAGE_TIMEOUT, "the RTT summary", |t| {
            t.contains("RTT p50")
        })
        .await;
}

/// Shift+Enter makes a new line; the two lines get two replies.
async fn shift_enter_makes_two_lines_with_two_replies(browser: &Browser) {
    browser.type_into("#bs-input", "first").await;
    browser
        .client
        .find(fantoccini::Locator::Css("#bs-input"))
        .await
        .unwrap()
        .send_keys("\u{E008}\u{E007}\u{E008}second")
        .await
        .unwrap();
    browser.type_into("#bs-input", ENTER).await;
    browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "two replies", |t| {
            t.contains("]:first") && t.contains("]:second")
        })
        .await;
}

/// The filter keeps only matching messages (case-insensitive) and says how many of all;
/// emptied, it shows the whole log again.
async fn assert_the_filter_keeps_only_matching_messages(browser: &Browser) {
    browser.type_into("#bs-filter", "SECOND").await;
    let filtered = browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "the filtered log", |t| {
            !t.contains("hello from chromium")
        })
        .await;
    assert!(filtered.contains("]:second"), "{filtered:?}");
    assert!(!filtered.contains("]:first"), "{filtered:?}");
    // "shown/all": the sent `second` and its reply, of at least the six messages so far.
    let count = browser.text("#bs-filter-count").await;
    let (shown, all) = count.trim().split_once('/').expect("shown/all");
    assert_eq!(shown, "2", "sent + reply of `second`: {count:?}");
    assert!(all.parse::<usize>().unwrap() >= 6, "{count:?}");
    clear_input(browser, "#bs-filter").await;
    browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "the whole log again", |t| {
            t.contains("hello from chromium") && t.contains("]:first")
        })
        .await;
}

/// The page finds its own upstream TCP session on the monitor and marks it in the C/S panel.
async fn assert_the_page_marks_its_upstream_session(browser: &Browser) {
    browser
        .wait_for(
            "#cs-sessions .session.mine[data-kind=tcp]",
            "this page's upstream session",
        )
        .await;
    let upstream = browser.text("#bs-upstream").await;
    let mine = browser.text("#cs-sessions .session.mine .s-id").await;
    assert!(
        !mine.is_empty() && upstream.contains(&mine),
        "{upstream:?} vs {mine:?}"
    );
    // The bridge's upstream carried the message as a raw line.
    browser
        .wait_text(
            "#cs-sessions .session.mine",
            PAGE_TIMEOUT,
            "the upstream line",
            |t| t.contains("hello from chromium\\n"),
        )
        .await;
}

/// Empties an input the way typing would (so the page's state follows).
async fn clear_input(browser: &Browser, css: &str) {
    browser
        .js(&format!(
            "const f = document.querySelector('{css}'); f.value = ''; \
             f.dispatchEvent(new InputEvent('input', {{bubbles: true}})); return null;"
        ))
        .await;
}

#[tokio::test]
async fn binary_messages_typed_as_hex_go_to_the_echo_byte_for_byte() {
    let Some(setup) = setup("binary_messages_typed_as_hex_go_to_the_echo_byte_for_byte") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;
    browser.click("#bs-mode-hex").await;

    // Not hex: said so, and nothing can be sent.
    browser.type_into("#bs-input", "68 69 zz").await;
    let err = browser
        .wait_text("#bs-hint", PAGE_TIMEOUT, "the hex error", |t| {
            t.contains("Not a hex digit") || t.contains("不是十六进制数字")
        })
        .await;
    assert!(err.contains("'z'"), "{err:?}");
    let disabled = browser
        .js("return document.querySelector('#bs-send').disabled;")
        .await;
    assert_eq!(disabled, serde_json::Value::Bool(true));
    browser.type_into("#bs-input", ENTER).await;
    assert!(browser.texts("#bs-log .entry.sent").await.is_empty());

    // `68 69 0a` is "hi\n", one binary message of 3 bytes; the echo stamps the line and the
    // bridge sends it back as text (it is UTF-8).
    clear_input(&browser, "#bs-input").await;
    browser.type_into("#bs-input", "68 69 0a").await;
    browser.type_into("#bs-input", ENTER).await;
    let reply = browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "the reply to hi", |t| {
            t.contains("]:hi")
        })
        .await;
    let sent = browser.text("#bs-log .entry.sent").await;
    assert!(
        sent.contains("68 69 0a") && sent.contains("3 B"),
        "{sent:?}"
    );
    let stamped = browser
        .texts("#bs-log .entry.received .msg")
        .await
        .into_iter()
        .find(|r| r.ends_with("]:hi"))
        .unwrap_or_else(|| panic!("{reply:?}"));
    assert_stamped(stamped.as_bytes(), b"hi");

    // No `\n` is added to binary: `ff 0a` reaches the echo as those two bytes, and the stamped
    // line (`[time]:` + 0xff) is not UTF-8, so it comes back as a binary message.
    browser.type_into("#bs-input", "ff 0a").await;
    browser.type_into("#bs-input", ENTER).await;
    browser
        .wait_text(
            "#bs-log .entry.received .msg.bin",
            PAGE_TIMEOUT,
            "a binary reply",
            |t| t.contains("3a ff"),
        )
        .await;
    // The bridge's upstream carried exactly those bytes.
    browser
        .wait_text(
            "#cs-sessions .session.mine",
            PAGE_TIMEOUT,
            "the upstream bytes",
            |t| t.contains("hi\\n"),
        )
        .await;

    // Back to text: the bridge adds the `\n` again.
    browser.click("#bs-mode-text").await;
    let reply = send_from_page(&browser, "text again").await;
    assert_stamped(reply.as_bytes(), b"text again");
    assert_no_console_errors(&browser).await;
    browser.quit().await;
    server.stop().await;
}

#[tokio::test]
async fn a_line_from_a_raw_tcp_client_appears_in_the_cs_panel_within_2s() {
    let Some(setup) = setup("a_line_from_a_raw_tcp_client_appears_in_the_cs_panel_within_2s")
    else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open(server.addrs.http[0]).await;
    browser.wait_feed_live().await;

    // The page notes when the line reaches its DOM (a MutationObserver's callback runs right
    // after the change), so the 2 s are the page's and not WebDriver's polling.
    browser
        .js(r#"
            const seen = () => document.querySelector('#cs-sessions')?.textContent
                .includes('typed in a terminal');
            new MutationObserver((_, observer) => {
                if (seen()) { window.__lineSeenAt = Date.now(); observer.disconnect(); }
            }).observe(document.body, { childList: true, subtree: true, characterData: true });
            return null;"#)
        .await;
    let mut client = LineClient::connect(server.addrs.tcp[0]).await;
    let sent_at = epoch_ms();
    client.send(b"typed in a terminal\n").await;
    let reply = client.line().await;
    assert_stamped(&reply, b"typed in a terminal\n");
    browser
        .wait_true(
            "return typeof window.__lineSeenAt === 'number';",
            "the raw client's line in the C/S panel",
        )
        .await;
    let seen_at = browser.js("return window.__lineSeenAt;").await;
    let elapsed = seen_at.as_f64().unwrap() - sent_at;
    assert!(elapsed < 2000.0, "took {elapsed} ms");
    eprintln!("raw TCP line visible in the page after {elapsed} ms");

    // Its reply too, and the session is counted and labelled as TCP.
    browser
        .wait_text("#cs-sessions", PAGE_TIMEOUT, "the echo's reply", |t| {
            t.contains("]:typed in a terminal\\n")
        })
        .await;
    let count = browser.text("#cs-count").await;
    assert_eq!(count.split_whitespace().next(), Some("1"), "{count:?}");

    // It disappears from the open list when the client hangs up, with the reason.
    drop(client);
    browser
        .wait_text(
            "#cs-sessions .session.closed",
            PAGE_TIMEOUT,
            "the closed session",
            |t| t.contains("closed"),
        )
        .await;

    assert_no_console_errors(&browser).await;
    browser.quit().await;
    server.stop().await;
}

#[tokio::test]
async fn when_the_upstream_stops_the_1011_close_is_explained() {
    let Some(setup) = setup("when_the_upstream_stops_the_1011_close_is_explained") else {
        return;
    };
    // An upstream the test controls: it accepts connections and reads what they send, never
    // answering, until it is stopped (its readers go with it, so every connection then ends
    // with a FIN: nothing is left unread to turn it into a reset).
    // A second socket on its port (SO_REUSEPORT, never listening) keeps the port from being
    // taken by anything else once it is stopped, so every reconnect is refused.
    let reuse_port_socket = || {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.set_reuse_port(true).unwrap();
        s
    };
    let listening = reuse_port_socket();
    listening
        .bind(&std::net::SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let upstream_addr = listening.local_addr().unwrap().as_socket().unwrap();
    let holder = reuse_port_socket();
    holder.bind(&upstream_addr.into()).unwrap();
    listening.listen(128).unwrap();
    listening.set_nonblocking(true).unwrap();
    let upstream = TcpListener::from_std(listening.into()).unwrap();
    let upstream_task = tokio::spawn(async move {
        let mut readers = tokio::task::JoinSet::new();
        while let Ok((mut conn, _)) = upstream.accept().await {
            readers.spawn(async move { tokio::io::copy(&mut conn, &mut tokio::io::sink()).await });
        }
    });
    let dist = setup.dist.clone();
    let server = start_server_with(move |c| {
        c.static_dir = dist;
        c.upstream = Some(upstream_addr.to_string());
    })
    .await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;

    // A message the upstream never answers: redraws wait for an owed reply at most 100 ms, so
    // its row is drawn while the reply is still owed.
    browser.type_into("#bs-input", "held").await;
    browser.type_into("#bs-input", ENTER).await;
    browser
        .wait_for("#bs-log .entry.sent", "the unanswered message's row")
        .await;
    assert!(browser.texts("#bs-log .entry.received").await.is_empty());

    // Stop the upstream: the bridge loses it (1000), and every reconnect finds nobody (1011).
    upstream_task.abort();
    let _ = upstream_task.await;
    let close = browser
        .wait_text("#close-info", PAGE_TIMEOUT, "the 1011 close", |t| {
            t.contains("1011")
        })
        .await;
    assert!(close.contains("server error"), "{close:?}");
    assert!(close.contains("could not reach its upstream"), "{close:?}");
    assert!(
        close.contains("reason:"),
        "the server's reason is shown: {close:?}"
    );
    // The page keeps trying, with a countdown, and says so.
    let status = browser.text("#bs-status").await;
    assert!(
        status.contains("closed") || status.contains("connecting"),
        "{status:?}"
    );
    let log = browser.text("#bs-log").await;
    assert!(
        log.contains("closed: 1000") && log.contains("closed: 1011"),
        "{log}"
    );

    assert_no_console_errors(&browser).await;
    browser.quit().await;
    server.stop().await;
    drop(holder);
}

#[tokio::test]
async fn a_stopped_server_is_shown_clearly_and_the_page_keeps_retrying() {
    let Some(setup) = setup("a_stopped_server_is_shown_clearly_and_the_page_keeps_retrying") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;
    // Whatever the page logs while the server is up is the page's fault: no filter here.
    assert_no_console_errors(&browser).await;
    // A WebTransport attempt that meets the endpoint while it shuts down fails in QUIC
    // instead, and Chromium logs that under the endpoint's URL, without the word.
    let webtransport = server
        .addrs
        .webtransport
        .map(|a| format!("connection to https://{a}/"));
    server.stop().await;
    browser
        .wait_text(
            "#server-pill",
            PAGE_TIMEOUT,
            "the server to be unreachable",
            |t| t.contains("unreachable"),
        )
        .await;
    let close = browser
        .wait_text("#close-info", PAGE_TIMEOUT, "a close explained", |t| {
            t.contains("1006")
        })
        .await;
    assert!(close.contains("no close frame"), "{close:?}");
    // It keeps retrying: a failed attempt schedules the next one, twice as far off.
    browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "a second retry", |t| {
            t.contains("reconnecting in 2 s")
        })
        .await;
    // After the stop, Chromium itself logs each failed reconnect (the bridge's WebSocket,
    // /api/info, the UDP panel's WebTransport session and its /api/webtransport); nothing else
    // may be logged.
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        .filter(|e| {
            !e.contains("WebSocket connection to")
                && !e.contains("api/info")
                && !e.contains("api/webtransport")
                && !e.contains("WebTransport")
                && !webtransport.as_ref().is_some_and(|w| e.contains(w))
                && !e.contains("net::ERR_CONNECTION_REFUSED")
        })
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
    browser.quit().await;
}

#[tokio::test]
async fn the_language_switches_and_is_remembered() {
    let Some(setup) = setup("the_language_switches_and_is_remembered") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open(server.addrs.http[0]).await;
    // An English browser gets English first.
    browser
        .wait_text("#bs-title", PAGE_TIMEOUT, "the English title", |t| {
            t.contains("This browser")
        })
        .await;
    browser.click("#lang-toggle").await;
    browser
        .wait_text("#bs-title", PAGE_TIMEOUT, "the Chinese title", |t| {
            t.contains("本浏览器")
        })
        .await;
    assert_eq!(
        browser.js("return document.documentElement.lang;").await,
        "zh-CN"
    );
    let teach = browser.text("#teach-title").await;
    assert!(teach.contains("不同"), "{teach:?}");

    // Remembered across a reload.
    browser.client.refresh().await.unwrap();
    browser
        .wait_text(
            "#bs-title",
            PAGE_TIMEOUT,
            "the remembered Chinese title",
            |t| t.contains("本浏览器"),
        )
        .await;
    // And back, from the keyboard: the toggle is a real button.
    browser
        .js("document.getElementById('lang-toggle').focus(); return null;")
        .await;
    browser.type_into("#lang-toggle", ENTER).await;
    browser
        .wait_text("#bs-title", PAGE_TIMEOUT, "English again", |t| {
            t.contains("This browser")
        })
        .await;

    assert_no_console_errors(&browser).await;
    browser.quit().await;
    server.stop().await;
}

/// Fills the page with some life (a raw TCP client, a UDP peer, a banner visit, messages from
/// the page) and saves screenshots at desktop and phone widths under `target/screenshots/`.
/// With `SOCKLAB_UPDATE_DOCS=1` it also refreshes `docs/screenshot-{desktop,phone}.png`.
#[tokio::test]
async fn screenshots_at_desktop_and_phone_widths() {
    let Some(setup) = setup("screenshots_at_desktop_and_phone_widths") else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1366, 900).await;
    browser.open_connected(&server).await;
    browser.wait_feed_live().await;

    visit_the_banner(&server).await;
    let nc = raw_tcp_client_like_nc(&server).await;
    let _udp = udp_peer(&server).await;
    // The page's own messages.
    send_from_page(&browser, "hi").await;
    send_from_page(&browser, "How does my message travel?").await;
    browser
        .wait_text("#cs-sessions", PAGE_TIMEOUT, "the raw sessions", |t| {
            t.contains("hello from nc") && t.contains("a datagram")
        })
        .await;
    browser
        .js("document.activeElement.blur(); return null;")
        .await;

    let dir = screenshot_dir();
    desktop_screenshots(&browser, &dir).await;
    phone_screenshots(&browser, &dir).await;
    if std::env::var("SOCKLAB_UPDATE_DOCS").is_ok_and(|v| v == "1") {
        copy_screenshots_to_docs(&dir);
    }

    assert_no_console_errors(&browser).await;
    drop(nc);
    browser.quit().await;
    server.stop().await;
}

/// A banner visit (opens and closes at once).
async fn visit_the_banner(server: &RunningServer) {
    let mut banner = TcpStream::connect(server.addrs.banner[0]).await.unwrap();
    let mut welcome = Vec::new();
    tokio::time::timeout(PAGE_TIMEOUT, banner.read_to_end(&mut welcome))
        .await
        .expect("the banner in time")
        .unwrap();
    assert_eq!(welcome, "欢迎访问菜鸟教程!\r\n".as_bytes());
}

/// A raw TCP client, like `nc`, after two stamped round trips.
async fn raw_tcp_client_like_nc(server: &RunningServer) -> LineClient {
    let mut nc = LineClient::connect(server.addrs.tcp[0]).await;
    nc.send("你好，socklab\n".as_bytes()).await;
    assert_stamped(&nc.line().await, "你好，socklab\n".as_bytes());
    nc.send(b"hello from nc\n").await;
    assert_stamped(&nc.line().await, b"hello from nc\n");
    nc
}

/// A UDP peer after one stamped datagram (loopback, no --udp-drop: the reply comes).
async fn udp_peer(server: &RunningServer) -> UdpSocket {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    udp.send_to(b"a datagram", server.addrs.udp[0])
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let (n, from) = tokio::time::timeout(PAGE_TIMEOUT, udp.recv_from(&mut buf))
        .await
        .expect("the UDP reply in time")
        .unwrap();
    assert_eq!(from, server.addrs.udp[0]);
    assert_stamped(&buf[..n], b"a datagram");
    udp
}

/// Desktop screenshots in `dir`: the screen, the full page, and the screen in Chinese.
async fn desktop_screenshots(browser: &Browser, dir: &Path) {
    browser
        .screenshot(&dir.join("desktop.png"), 1366, 900, false)
        .await;
    browser
        .screenshot(&dir.join("desktop-full.png"), 1366, 900, true)
        .await;
    browser.click("#lang-toggle").await;
    browser
        .wait_text("#bs-title", PAGE_TIMEOUT, "Chinese", |t| {
            t.contains("本浏览器")
        })
        .await;
    browser
        .screenshot(&dir.join("desktop-zh.png"), 1366, 900, false)
        .await;
    browser.click("#lang-toggle").await;
}

/// Phone width: nothing may stick out sideways; the screen and the full page in `dir`.
async fn phone_screenshots(browser: &Browser, dir: &Path) {
    browser.resize(360, 780).await;
    browser.settle().await;
    let overflow = browser
        .js("return document.documentElement.scrollWidth - document.documentElement.clientWidth;")
        .await;
    assert_eq!(overflow, 0, "the page is wider than a 360 px screen");
    browser
        .screenshot(&dir.join("phone.png"), 360, 780, false)
        .await;
    browser
        .screenshot(&dir.join("phone-full.png"), 360, 780, true)
        .await;
}

/// Refreshes `docs/screenshot-{desktop,phone}.png` from the screenshots in `dir`.
fn copy_screenshots_to_docs(dir: &Path) {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::copy(dir.join("desktop.png"), docs.join("screenshot-desktop.png")).unwrap();
    std::fs::copy(
        dir.join("phone-full.png"),
        docs.join("screenshot-phone.png"),
    )
    .unwrap();
}

#[tokio::test]
async fn a_long_log_draws_its_newest_rows_and_the_older_ones_on_request() {
    let Some(setup) = setup("a_long_log_draws_its_newest_rows_and_the_older_ones_on_request")
    else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;
    browser.send_messages("many", 46, 0).await;
    // The connection notes (seq 0 and 1) and 92 message rows (seq 2 to 93): the rows before
    // seq 30 are not drawn (the oldest drawn is a multiple of 30, 60 to 89 back), and a
    // button above the log says so.
    let rows = "return document.querySelectorAll('#bs-log .entry').length";
    browser
        .wait_true(&format!("{rows} === 64"), "64 rows drawn")
        .await;
    assert_eq!(browser.text("#bs-log-older").await, "Show 30 older rows");
    let (in_view, newest) = log_view(&browser).await;
    assert!(newest.contains("]:many 45"), "{newest:?}");
    assert!(in_view.contains(&newest), "{in_view:#?}");

    // Drawn above the rows in view, the older ones leave the view alone.
    browser.click("#bs-log-older").await;
    browser
        .wait_true(&format!("{rows} === 94"), "all 94 rows drawn")
        .await;
    browser.settle().await;
    assert_eq!(
        log_view(&browser).await.0,
        in_view,
        "the rows in view moved"
    );
    assert_eq!(
        browser
            .js("return document.getElementById('bs-log-older');")
            .await,
        serde_json::Value::Null
    );
    // The button is gone: the keyboard goes on in the log.
    assert_eq!(
        browser.js("return document.activeElement.id;").await,
        serde_json::json!("bs-log")
    );
    let first = browser
        .js("return document.querySelector('#bs-log .entry').textContent;")
        .await;
    assert!(
        first.as_str().is_some_and(|t| t.contains("connecting to")),
        "{first}"
    );
    assert_only_the_newest_rows_are_live(&browser).await;

    // More messages while every row is drawn: no row moves from the live list to the older
    // one (it would be drawn again), so a row marked now is the same element after them.
    let marked = browser
        .js(
            "const r = document.querySelectorAll('#bs-log .entry')[70]; \
             r.dataset.mark = 'kept'; return r.textContent;",
        )
        .await;
    browser.send_messages("more", 30, 0).await;
    browser
        .wait_true(&format!("{rows} === 154"), "all 154 rows drawn")
        .await;
    let kept = browser
        .js("const r = document.querySelector('#bs-log [data-mark=kept]'); return r && r.textContent;")
        .await;
    assert_eq!(kept, marked, "the marked row was drawn again");
    assert_only_the_newest_rows_are_live(&browser).await;

    past_500_rows_the_dropped_note_is_not_live(&browser).await;
    browser.quit().await;
    server.stop().await;
}

/// Past the 500 rows the log keeps (504 after the long-log test's 251 messages), the note
/// on dropped rows, which changes with every message from then on, is in no live region.
async fn past_500_rows_the_dropped_note_is_not_live(browser: &Browser) {
    browser.send_messages("last", 175, 0).await;
    let note = "#bs-log-trimmed";
    browser.wait_for(note, "the note on dropped rows").await;
    browser
        .wait_text(note, PAGE_TIMEOUT, "4 rows dropped", |t| {
            t.contains(": 4 older ones were dropped")
        })
        .await;
    let live = browser
        .js(&format!(
            "const r = document.querySelector({note:?}).closest('[role=log], [aria-live]'); \
             return r && r.id;"
        ))
        .await;
    assert_eq!(
        live,
        serde_json::Value::Null,
        "the note is in a live region"
    );
}

/// What a screen reader is told of the B/S log: its newest row is in the log's live region,
/// which Chromium's accessibility tree has as polite; its oldest is in none, so older rows
/// drawn on request are not announced as news.
async fn assert_only_the_newest_rows_are_live(browser: &Browser) {
    let live_root = |row: &str| {
        format!(
            "const rows = document.querySelectorAll('#bs-log .entry'); \
             const r = rows[{row}].closest('[role=log], [aria-live]'); return r && r.id;"
        )
    };
    let oldest = browser.js(&live_root("0")).await;
    assert_eq!(
        oldest,
        serde_json::Value::Null,
        "an older row is in a live region"
    );
    let newest = browser.js(&live_root("rows.length - 1")).await;
    assert_eq!(newest, serde_json::json!("bs-log-live"));
    let live = ax_props(browser, "#bs-log-live").await;
    assert!(
        live.as_array().is_some_and(|props| props
            .iter()
            .any(|p| p["name"] == "live" && p["value"]["value"] == "polite")),
        "{live}"
    );
}

/// The accessibility properties Chromium computed for the first element `css` matches.
async fn ax_props(browser: &Browser, css: &str) -> serde_json::Value {
    let expression = format!("document.querySelector({css:?})");
    let found = browser
        .cdp(
            "Runtime.evaluate",
            serde_json::json!({ "expression": expression }),
        )
        .await;
    let object_id = &found["result"]["objectId"];
    assert!(object_id.is_string(), "{css} not found: {found}");
    let tree = browser
        .cdp(
            "Accessibility.getPartialAXTree",
            serde_json::json!({ "objectId": object_id, "fetchRelatives": false }),
        )
        .await;
    tree["nodes"][0]["properties"].clone()
}

/// The text of the B/S log's rows inside its visible box, top to bottom.
const ROWS_IN_VIEW: &str = "const log = document.getElementById('bs-log'); \
    const box = log.getBoundingClientRect(); \
    return [...log.querySelectorAll('.entry')].filter((r) => { \
      const b = r.getBoundingClientRect(); return b.top >= box.top - 1 && b.bottom <= box.bottom + 1; \
    }).map((r) => r.textContent);";

/// Rows in view of the log (never none: the log always shows some), and the text of its
/// newest row.
async fn log_view(browser: &Browser) -> (Vec<String>, String) {
    let rows: Vec<String> = serde_json::from_value(browser.js(ROWS_IN_VIEW).await)
        .expect("the rows in view, as a list of strings");
    assert!(!rows.is_empty(), "no log row in view");
    let newest = browser
        .js("const r = document.querySelectorAll('#bs-log .entry'); return r[r.length - 1].textContent;")
        .await;
    let newest = newest.as_str().expect("the newest row's text").to_owned();
    (rows, newest)
}

#[tokio::test]
async fn the_log_follows_new_rows_unless_scrolled_up_and_a_send_follows_again() {
    let Some(setup) = setup("the_log_follows_new_rows_unless_scrolled_up_and_a_send_follows_again")
    else {
        return;
    };
    let server = serve_page(&setup).await;
    let browser = Browser::start(&setup, 1280, 900).await;
    browser.open_connected(&server).await;
    // More rows than the log's height holds.
    for i in 0..12 {
        send_from_page(&browser, &format!("row {i}")).await;
    }
    browser
        .wait_true(
            "const l = document.getElementById('bs-log'); return l.scrollHeight > l.clientHeight;",
            "the log to overflow",
        )
        .await;
    let (rows, newest) = log_view(&browser).await;
    assert!(
        rows.contains(&newest),
        "the newest row is not in view: {rows:#?}"
    );

    // Scrolled up to read: a new row (the disconnect's note) leaves the rows in view alone.
    browser
        .js("document.getElementById('bs-log').scrollBy(0, -150); return null;")
        .await;
    browser.settle().await;
    let (reading, _) = log_view(&browser).await;
    browser.click("#bs-disconnect").await;
    browser
        .wait_text("#bs-log", PAGE_TIMEOUT, "the close note", |t| {
            t.contains("closed:")
        })
        .await;
    browser.settle().await;
    let (rows, newest) = log_view(&browser).await;
    assert_eq!(rows, reading, "the rows being read moved");
    assert!(
        !rows.contains(&newest),
        "the log followed while scrolled up"
    );

    // Sending follows the log again.
    browser.click("#bs-reconnect").await;
    browser
        .wait_for("#bs-status[data-status=open]", "the reconnect")
        .await;
    send_from_page(&browser, "back to the end").await;
    browser.settle().await;
    let (rows, newest) = log_view(&browser).await;
    assert!(newest.contains("back to the end"), "{newest:?}");
    assert!(
        rows.contains(&newest),
        "the send did not follow the log: {rows:#?}"
    );
    browser.quit().await;
    server.stop().await;
}
