//! One captured IP packet, taken apart with `etherparse`: its addresses, its TCP or UDP
//! header fields and where its payload starts. Anything else (ARP, ICMP, fragments) is `None`.

use std::net::{IpAddr, SocketAddr};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};

/// The parts of a TCP or UDP packet the capture keeps and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Parsed {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// 4 or 6.
    pub ip: u8,
    /// The transport and its header fields.
    pub transport: Transport,
    /// The IP header's length (IPv6: with extension headers).
    pub ip_header: usize,
    /// The TCP/UDP header's length.
    pub transport_header: usize,
    /// The payload's length.
    pub payload_len: usize,
}

/// TCP's header fields the ladder shows, or UDP (whose header has nothing more to show).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A TCP segment.
    Tcp {
        /// Raw sequence number.
        seq: u32,
        /// Raw acknowledgement number.
        ack: u32,
        /// Receive window, unscaled.
        window: u16,
        /// Flags, as [`TcpFlags`].
        flags: TcpFlags,
    },
    /// A UDP datagram.
    Udp,
}

/// The TCP flags that matter to the lesson.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TcpFlags {
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub ack: bool,
    pub urg: bool,
    pub ece: bool,
    pub cwr: bool,
}

impl TcpFlags {
    /// The names of the flags set, SYN first (so a SYN-ACK reads `SYN ACK`).
    pub fn names(self) -> Vec<String> {
        [
            (self.syn, "SYN"),
            (self.fin, "FIN"),
            (self.rst, "RST"),
            (self.psh, "PSH"),
            (self.ack, "ACK"),
            (self.urg, "URG"),
            (self.ece, "ECE"),
            (self.cwr, "CWR"),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name.to_owned())
        .collect()
    }
}

/// Parses a packet that starts at its IP header (what a `SOCK_DGRAM` packet socket hands over).
pub(crate) fn parse(data: &[u8]) -> Option<Parsed> {
    let sliced = SlicedPacket::from_ip(data).ok()?;
    let (src_ip, dst_ip, ip, ip_payload) = match sliced.net? {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            let payload = v4.payload();
            if payload.fragmented {
                return None;
            }
            let ips = (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
            );
            (ips.0, ips.1, 4, payload.payload)
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            let payload = v6.payload();
            if payload.fragmented {
                return None;
            }
            let ips = (
                IpAddr::from(h.source_addr()),
                IpAddr::from(h.destination_addr()),
            );
            (ips.0, ips.1, 6, payload.payload)
        }
        NetSlice::Arp(_) => return None,
    };
    // Where the IP payload starts within the packet: the IP header's length.
    let ip_header = (ip_payload.as_ptr() as usize).saturating_sub(data.as_ptr() as usize);
    let (src_port, dst_port, transport, transport_header, payload_len) = match sliced.transport? {
        TransportSlice::Tcp(tcp) => {
            let flags = TcpFlags {
                syn: tcp.syn(),
                fin: tcp.fin(),
                rst: tcp.rst(),
                psh: tcp.psh(),
                ack: tcp.ack(),
                urg: tcp.urg(),
                ece: tcp.ece(),
                cwr: tcp.cwr(),
            };
            let t = Transport::Tcp {
                seq: tcp.sequence_number(),
                ack: tcp.acknowledgment_number(),
                window: tcp.window_size(),
                flags,
            };
            let header = tcp.header_slice().len();
            let ports = (tcp.source_port(), tcp.destination_port());
            (ports.0, ports.1, t, header, tcp.payload().len())
        }
        TransportSlice::Udp(udp) => {
            let ports = (udp.source_port(), udp.destination_port());
            (ports.0, ports.1, Transport::Udp, 8, udp.payload().len())
        }
        _ => return None,
    };
    Some(Parsed {
        src: SocketAddr::new(src_ip, src_port),
        dst: SocketAddr::new(dst_ip, dst_port),
        ip,
        transport,
        ip_header,
        transport_header,
        payload_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn a_tcp_segment_over_ipv4_is_taken_apart() {
        let builder = PacketBuilder::ipv4([127, 0, 0, 1], [127, 0, 0, 2], 64)
            .tcp(40000, 21566, 1000, 512)
            .psh()
            .ack(77);
        let mut packet = Vec::new();
        builder.write(&mut packet, b"hi\n").unwrap();
        let p = parse(&packet).unwrap();
        assert_eq!(p.src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(p.dst, "127.0.0.2:21566".parse().unwrap());
        assert_eq!(
            (p.ip, p.ip_header, p.transport_header, p.payload_len),
            (4, 20, 20, 3)
        );
        let Transport::Tcp {
            seq,
            ack,
            window,
            flags,
        } = p.transport
        else {
            panic!("not tcp");
        };
        assert_eq!((seq, ack, window), (1000, 77, 512));
        assert_eq!(flags.names(), ["PSH", "ACK"]);
    }

    #[test]
    fn a_udp_datagram_over_ipv6_is_taken_apart() {
        let builder = PacketBuilder::ipv6([0; 16], [0; 16], 64).udp(5000, 21566);
        let mut packet = Vec::new();
        builder.write(&mut packet, b"ping").unwrap();
        let p = parse(&packet).unwrap();
        assert_eq!(p.transport, Transport::Udp);
        assert_eq!(
            (p.ip, p.ip_header, p.transport_header, p.payload_len),
            (6, 40, 8, 4)
        );
    }

    #[test]
    fn anything_else_is_none() {
        assert_eq!(parse(b""), None);
        assert_eq!(parse(&[0x45, 0, 0]), None);
    }
}
