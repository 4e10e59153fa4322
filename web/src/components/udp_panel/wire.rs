//! The path of one datagram and its bytes on the wire (a fold-out under the UDP panel).

use yew::prelude::*;

use crate::i18n::Lang;

#[derive(Properties, PartialEq)]
pub struct WireProps {
    pub lang: Lang,
}

/// The path of one datagram and its bytes on the wire.
#[component]
pub fn Wire(props: &WireProps) -> Html {
    let l = props.lang;
    html! {
        <details class="more" id="udp-wire">
            <summary>{ l.t("One datagram on the wire", "一个数据报在线路上") }</summary>
            <p class="small">{ l.t(
                "\"hi\" from this page: 2 bytes of payload + 1 byte HTTP/3 session id (quarter stream id) + 2 bytes QUIC DATAGRAM frame (type, length) + about 10 bytes QUIC short header (flags, connection id, packet number) + 16 bytes encryption tag + 8 bytes UDP header + 20 bytes IPv4 (40 IPv6). No handshake per message, no retransmission, no ordering: what is lost stays lost. The server's gateway sends the 2 bytes on as one plain UDP datagram (8 + 20 bytes of headers) to the echo.",
                "本页面发出的 \"hi\"：2 字节负载 + 1 字节 HTTP/3 会话编号（quarter stream id）+ 2 字节 QUIC DATAGRAM 帧（类型、长度）+ 约 10 字节 QUIC 短包头（标志、连接 ID、包号）+ 16 字节加密校验 + 8 字节 UDP 头 + 20 字节 IPv4 头（IPv6 为 40）。每条消息没有握手、没有重传、不保证顺序：丢了就是丢了。服务器的网关把这 2 字节作为一个普通 UDP 数据报（8 + 20 字节头）转给回显服务。",
            ) }</p>
            <p class="small">{ l.t(
                "Once per session: the QUIC handshake (TLS 1.3 inside QUIC, about 3–5 KB with the certificate) and an HTTP/3 CONNECT request with :protocol = webtransport. Over WebSocket the same \"hi\" is an 8-byte frame inside TCP, and always arrives, in order.",
                "每个会话一次：QUIC 握手（QUIC 内的 TLS 1.3，连同证书约 3–5 KB）和一个 :protocol = webtransport 的 HTTP/3 CONNECT 请求。走 WebSocket 时，同样的 \"hi\" 是 TCP 里的一个 8 字节帧，而且一定按顺序到达。",
            ) }</p>
        </details>
    }
}
