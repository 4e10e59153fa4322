//! The root component: the header, the two panels side by side, the teaching strip.
//!
//! It owns the page's state (two reducers and the server info) and the two connections, and
//! hands each panel exactly what it shows.

use std::cell::Cell;
use std::rc::Rc;

use socklab_protocol::ServerInfo;
use yew::prelude::*;

use crate::components::bs_panel::{BsPanel, Upstream};
use crate::components::cs_panel::CsPanel;
use crate::components::packets::Ladder;
use crate::components::teaching::Teaching;
use crate::components::udp_panel::UdpPanel;
use crate::components::widgets::Logo;
use crate::i18n::Lang;
use crate::services::api;
use crate::services::bridge::BridgeHandle;
use crate::services::monitor::MonitorHandle;
use crate::state::bridge::BridgeState;
use crate::state::monitor::{Feed, MonitorState};
use crate::state::packets::OwnPackets;
use crate::util;

#[component]
pub fn App() -> Html {
    let lang = use_state(Lang::initial);
    // A random tag for this page load: the server echoes it in the `ws` session's
    // `session_opened`, which is how the C/S panel finds this page's own upstream.
    let tag = use_memo((), |_| util::random_tag());
    let bridge_state = use_reducer(BridgeState::default);
    let monitor_state = use_reducer({
        let tag = (*tag).clone();
        move || MonitorState::new(tag)
    });
    let info = use_state(|| None::<ServerInfo>);
    let (bridge, monitor) = use_connections(&tag, &bridge_state, &monitor_state, &info);
    use_effect_with(*lang, |lang| lang.remember());
    use_packets_where_captured(&monitor, &info);
    // Made once per language, so the memoised header sees the same callback on every render.
    let toggle_lang = use_callback(lang.clone(), |_: MouseEvent, lang| lang.set(lang.other()));

    let l = *lang;
    let upstream = monitor_state.my_upstream().map(|u| Upstream {
        id: u.opened.id,
        peer: u.opened.peer.clone(),
        local: u.opened.local.clone(),
    });
    let ladders = own_ladders(l, &monitor_state);

    html! {
        <div class="page">
            <a class="skip" href="#bs-input">{ l.t("Skip to the message box", "跳到消息输入框") }</a>
            // The header and the footer are components of their own: the App redraws on every
            // bridge or monitor change, they only when the language, feed or version does.
            <Header lang={l} feed={monitor_state.feed.clone()} {toggle_lang} />

            <main class="panels">
                <BsPanel lang={l} state={bridge_state.clone()} bridge={(*bridge).clone()}
                    upstream={upstream} max_message={info.as_ref().map(|i| i.max_message)}
                    capture={info.as_ref().map(|i| i.capture)} {ladders} />
                <CsPanel lang={l} state={monitor_state.clone()} info={(*info).clone()} />
            </main>

            <UdpPanel lang={l} />

            <Teaching lang={l} exchange={bridge_state.exchange.clone()} info={(*info).clone()}
                tag={(*tag).clone()} handshake={monitor_state.my_handshake}
                own={own_packets(&monitor_state)} />

            <Footer lang={l} version={info.as_ref().map(|i| i.version.clone())} />
        </div>
    }
}

/// The page's two connections, the bridge and the monitor feed, made and connected once.
#[hook]
fn use_connections(
    tag: &Rc<String>,
    bridge_state: &UseReducerHandle<BridgeState>,
    monitor_state: &UseReducerHandle<MonitorState>,
    info: &UseStateHandle<Option<ServerInfo>>,
) -> (Rc<BridgeHandle>, Rc<MonitorHandle>) {
    let bridge = {
        let dispatch = bridge_state.dispatcher();
        let tag = (**tag).clone();
        use_memo((), move |_| {
            BridgeHandle::new(util::ws_url(&format!("ws?tag={tag}")), dispatch)
        })
    };
    // Set when the info was just fetched for the feed's first connect (below), so that connect
    // does not fetch it a second time.
    let info_fresh = use_memo((), |_| Rc::new(Cell::new(false)));
    let monitor = use_monitor(
        monitor_state.dispatcher(),
        info.setter(),
        (*info_fresh).clone(),
    );
    {
        let bridge = (*bridge).clone();
        let monitor = (*monitor).clone();
        let setter = info.setter();
        let fresh = (*info_fresh).clone();
        use_effect_with((), move |_| {
            bridge.connect();
            // The feed's first connect waits for the server info, so that it asks for packet
            // events from the start: turning them on later means a reconnect, whose fresh
            // snapshot redraws every card (and replays their entrance animation).
            yew::platform::spawn_local(async move {
                if let Ok(info) = api::server_info().await {
                    monitor.set_packets(info.capture);
                    setter.set(Some(info));
                    fresh.set(true);
                }
                monitor.connect();
            });
        });
    }
    (bridge, monitor)
}

/// The monitor feed, made once; `fresh` spares its first connect a second info fetch.
#[hook]
fn use_monitor(
    dispatch: UseReducerDispatcher<MonitorState>,
    setter: UseStateSetter<Option<ServerInfo>>,
    fresh: Rc<Cell<bool>>,
) -> Rc<MonitorHandle> {
    use_memo((), move |_| {
        // Each (re)connect of the feed refreshes the server info: the server may have
        // restarted with other addresses.
        let on_open = Callback::from(move |()| {
            if fresh.replace(false) {
                return;
            }
            let setter = setter.clone();
            yew::platform::spawn_local(async move {
                if let Ok(info) = api::server_info().await {
                    setter.set(Some(info));
                }
            });
        });
        MonitorHandle::new(util::ws_url("api/events"), dispatch, on_open)
    })
}

/// Turns the feed's packet events on or off as the server info's `capture` says.
#[hook]
fn use_packets_where_captured(
    monitor: &Rc<MonitorHandle>,
    info: &UseStateHandle<Option<ServerInfo>>,
) {
    // Packet events only where the server captures: the feed reconnects with `?packets=1`.
    let monitor = (**monitor).clone();
    use_effect_with(info.as_ref().map(|i| i.capture), move |capture| {
        if let Some(on) = *capture {
            monitor.want_packets(on);
        }
    });
}

/// What the [`Header`] shows.
#[derive(Properties, PartialEq)]
struct HeaderProps {
    lang: Lang,
    /// The monitor feed's state, shown as the server's pill.
    feed: Feed,
    /// Switches the page's language.
    toggle_lang: Callback<MouseEvent>,
}

/// The page's banner: title, tagline, the server's pill, the language switch and the intro.
#[component]
fn Header(props: &HeaderProps) -> Html {
    let l = props.lang;
    let (server_class, server_text) = match props.feed {
        Feed::Live => ("pill ok", l.t("server online", "服务器在线")),
        Feed::Connecting => ("pill wait", l.t("connecting…", "连接中…")),
        Feed::Down { .. } => ("pill bad", l.t("server unreachable", "服务器无法访问")),
    };
    html! {
        // One banner landmark holds the title and the intro, so no text sits outside a
        // landmark (axe `region`).
        <header>
            <div class="top">
                <div class="brand">
                    <Logo />
                    <div>
                        <h1>{ "socklab" }</h1>
                        <p class="tagline">{ l.t(
                            "C/S and B/S side by side — one echo server, two kinds of client",
                            "C/S 与 B/S 并排对照——同一个回显服务器，两种客户端",
                        ) }</p>
                    </div>
                </div>
                <div class="top-actions">
                    <span class={server_class} id="server-pill" role="status">
                        <span class="dot" aria-hidden="true"></span>{ server_text }
                    </span>
                    <button id="lang-toggle" class="btn ghost" onclick={props.toggle_lang.clone()}
                        lang={l.other().code()}
                        aria-label={l.t("切换到中文", "Switch to English")}>
                        { l.t("中文", "English") }
                    </button>
                </div>
            </div>
            <p class="intro">
                { l.t(
                    "Type on the left: your browser cannot open a raw TCP socket, so it speaks WebSocket to a bridge, which opens a real TCP connection to the echo service. On the right: every raw TCP/UDP client the server is serving right now — open a terminal and join.",
                    "在左边输入：浏览器不能直接打开 TCP 套接字，所以它用 WebSocket 连到桥，由桥建立真正的 TCP 连接去访问回显服务。右边：服务器此刻正在服务的每一个原始 TCP/UDP 客户端——打开终端，一起加入。",
                ) }
            </p>
        </header>
    }
}

/// What the [`Footer`] shows.
#[derive(Properties, PartialEq)]
struct FooterProps {
    lang: Lang,
    /// The server's version, once `/api/info` answered.
    version: Option<String>,
}

/// The page's footer: the lesson, and the server's version.
#[component]
fn Footer(props: &FooterProps) -> Html {
    let l = props.lang;
    html! {
        <footer class="foot">
            <span>{ l.t(
                "Lesson 23 · network programming — socket, TCP vs UDP, C/S vs B/S",
                "第二十三课 · 网络编程——socket、TCP 与 UDP、C/S 与 B/S",
            ) }</span>
            <span class="muted">
                { props.version.as_ref().map(|v| format!("socklab-server {v}")).unwrap_or_default() }
            </span>
        </footer>
    }
}

/// The packet logs of this page's own sessions, for the teaching strip's measured sizes.
fn own_packets(st: &MonitorState) -> OwnPackets {
    OwnPackets {
        ws: st.my_ws.as_ref().and_then(|(_, ws)| st.packets.of(*ws)),
        upstream: st.my_upstream().and_then(|up| st.packets.of(up.opened.id)),
    }
}

/// This page's own sessions for the B/S Packets view: its WebSocket session and, through
/// `via`, the bridge's upstream TCP session (none before the feed has shown them).
fn own_ladders(l: Lang, st: &MonitorState) -> Vec<Ladder> {
    let Some((_, ws)) = st.my_ws.as_ref() else {
        return Vec::new();
    };
    let mut ladders = vec![Ladder {
        id: *ws,
        title: l
            .t("WebSocket: browser → bridge", "WebSocket：浏览器 → 桥")
            .into(),
        log: st.packets.of(*ws),
    }];
    if let Some(up) = st.my_upstream() {
        ladders.push(Ladder {
            id: up.opened.id,
            title: l.t("TCP: bridge → echo", "TCP：桥 → 回显").into(),
            log: st.packets.of(up.opened.id),
        });
    }
    ladders
}
