//! The Packets view's state: per session, the newest captured packets (`packet` events of
//! `/api/events?packets=1`), and how each one reads on a ladder (SYN, SYN-ACK, PSH/ACK len 3…).
//!
//! Only the last [`KEEP`] packets of a session and the logs of at most [`MAX_SESSIONS`]
//! sessions are kept: the server keeps the whole handshake in its pcap, the page shows what
//! fits on a screen, so a burst costs the page a bounded amount of memory and drawing.

use std::collections::VecDeque;

use litemap::LiteMap;

use socklab_protocol::{Direction, PacketEvent};

use super::Shared;

/// Packets kept (and drawn) per session.
pub const KEEP: usize = 64;
/// Sessions whose packets are kept.
pub const MAX_SESSIONS: usize = 64;

/// One session's newest packets and how many it had in all (since this page subscribed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PacketLog {
    /// The newest packets, oldest first.
    pub packets: VecDeque<PacketEvent>,
    /// Packets seen in all, kept or not.
    pub total: u64,
}

/// Packet logs by session id (packet events carry no instance: capture is per instance, and
/// a page subscribes to its own instance's packets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Packets {
    /// Each session's log.
    pub logs: LiteMap<u64, Shared<PacketLog>>,
}

impl Packets {
    /// Adds one packet; when too many sessions have logs, the oldest one not in `keep` goes.
    pub fn push(&mut self, packet: PacketEvent, keep: impl Fn(u64) -> bool) {
        let log = self.logs.entry(packet.id).or_default().make_mut();
        log.total += 1;
        log.packets.push_back(packet);
        while log.packets.len() > KEEP {
            log.packets.pop_front();
        }
        if self.logs.len() > MAX_SESSIONS {
            let victim = self
                .logs
                .keys()
                .copied()
                .find(|id| !keep(*id))
                .or_else(|| self.logs.keys().copied().next());
            if let Some(id) = victim {
                self.logs.remove(&id);
            }
        }
    }

    /// The log of session `id`, if it has one.
    pub fn of(&self, id: u64) -> Option<Shared<PacketLog>> {
        self.logs.get(&id).cloned()
    }
}

/// This page's own sessions' packet logs, for the teaching strip's measured sizes: its
/// WebSocket session's and the bridge's upstream TCP session's (each `None` until seen).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OwnPackets {
    /// The page's WebSocket session (`in`: browser → bridge).
    pub ws: Option<Shared<PacketLog>>,
    /// The bridge's upstream TCP session, as the echo serves it (`in`: bridge → echo).
    pub upstream: Option<Shared<PacketLog>>,
}

/// The newest packet of `log` that went `dir` and carried data; with `websocket`, one that
/// carried a data frame (a ping or a pong, whose first byte has opcode 8 or more, is passed
/// over).
pub fn newest_data(log: &PacketLog, dir: Direction, websocket: bool) -> Option<&PacketEvent> {
    let control = |p: &PacketEvent| {
        p.payload_hex
            .get(..2)
            .and_then(|b| u8::from_str_radix(b, 16).ok())
            .is_some_and(|b| b & 0x0f >= 8)
    };
    log.packets
        .iter()
        .rev()
        .find(|p| p.dir == dir && p.payload_len > 0 && !(websocket && control(p)))
}

/// How a packet reads on the ladder: `SYN`, `SYN-ACK`, `ACK`, `PSH/ACK len 3`, `FIN/ACK`,
/// `RST`; a UDP datagram reads `UDP len N`.
pub fn label(p: &PacketEvent) -> String {
    if p.proto != "tcp" {
        return format!("UDP len {}", p.payload_len);
    }
    let has = |f: &str| p.flags.iter().any(|x| x == f);
    let mut name = if has("SYN") && has("ACK") {
        "SYN-ACK".to_string()
    } else {
        let shown: Vec<&str> = ["SYN", "FIN", "RST", "PSH", "ACK"]
            .into_iter()
            .filter(|f| has(f))
            .collect();
        if shown.is_empty() {
            "—".to_string()
        } else {
            shown.join("/")
        }
    };
    if p.payload_len > 0 {
        name.push_str(&format!(" len {}", p.payload_len));
    }
    name
}

/// Bytes as text: printable ASCII as is, `\n`, `\r`, `\t` escaped, anything else as `·`.
pub fn as_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push('·'),
        }
    }
    out
}

/// Bytes as spaced hex, `68 69 0a`.
pub fn spaced_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use socklab_protocol::Direction;

    use super::*;

    fn packet(id: u64, proto: &str, flags: &[&str], len: u32) -> PacketEvent {
        PacketEvent {
            id,
            at: "2026-01-01T12:00:00.000001+00:00".into(),
            dir: Direction::In,
            ip: 4,
            proto: proto.into(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            seq: None,
            ack: None,
            window: None,
            ip_header: 20,
            transport_header: if proto == "tcp" { 32 } else { 8 },
            payload_len: len,
            payload_hex: String::new(),
        }
    }

    #[test]
    fn the_ladder_names_the_handshake_data_and_teardown() {
        let names: Vec<String> = [
            packet(1, "tcp", &["SYN"], 0),
            packet(1, "tcp", &["SYN", "ACK"], 0),
            packet(1, "tcp", &["ACK"], 0),
            packet(1, "tcp", &["PSH", "ACK"], 3),
            packet(1, "tcp", &["FIN", "ACK"], 0),
            packet(1, "tcp", &["RST"], 0),
            packet(2, "udp", &[], 3),
        ]
        .iter()
        .map(label)
        .collect();
        assert_eq!(
            names,
            [
                "SYN",
                "SYN-ACK",
                "ACK",
                "PSH/ACK len 3",
                "FIN/ACK",
                "RST",
                "UDP len 3"
            ]
        );
    }

    #[test]
    fn the_newest_data_segment_each_way_skips_websocket_pings() {
        let mut log = PacketLog::default();
        let mut frame = |dir, len: u32, hex: &str| {
            let mut p = packet(1, "tcp", &["PSH", "ACK"], len);
            p.dir = dir;
            p.payload_hex = hex.into();
            log.packets.push_back(p);
        };
        frame(Direction::In, 8, "8182");
        frame(Direction::Out, 31, "811d");
        frame(Direction::Out, 2, "8900");
        frame(Direction::In, 0, "");
        let out = newest_data(&log, Direction::Out, true).map(|p| p.payload_len);
        let raw_out = newest_data(&log, Direction::Out, false).map(|p| p.payload_len);
        let inward = newest_data(&log, Direction::In, true).map(|p| p.payload_len);
        assert_eq!((out, raw_out, inward), (Some(31), Some(2), Some(8)));
    }

    #[test]
    fn payloads_read_as_text_and_hex() {
        let bytes = b"hi\n\x00";
        assert_eq!(as_text(bytes), "hi\\n·");
        assert_eq!(spaced_hex(bytes), "68 69 0a 00");
    }

    #[test]
    fn logs_are_bounded_per_session_and_in_number() {
        let mut p = Packets::default();
        for _ in 0..(KEEP + 10) {
            p.push(packet(1, "tcp", &["ACK"], 0), |_| false);
        }
        let log = p.of(1).expect("a log");
        assert_eq!((log.packets.len(), log.total), (KEEP, KEEP as u64 + 10));
        for id in 2..(MAX_SESSIONS as u64 + 5) {
            p.push(packet(id, "udp", &[], 1), |id| id == 1);
        }
        assert_eq!(p.logs.len(), MAX_SESSIONS);
        assert!(p.of(1).is_some(), "an open session keeps its log");
    }
}
