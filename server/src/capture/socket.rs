//! The raw socket: an `AF_PACKET`/`SOCK_DGRAM` socket (the kernel strips the link header, so
//! every packet starts at its IP header) with a classic BPF filter that lets through only
//! TCP/UDP packets to or from socklab's listening ports, and only one of loopback's two copies.
//! Its reader thread does nothing but read and queue, so the kernel's buffer is drained fast;
//! when the queue is full the packet is dropped and counted.
//!
//! The kernel's own drops (its buffer for the socket full because this thread fell behind) are
//! read from `SO_RXQ_OVFL`: each packet read carries the socket's drop count so far, the same
//! count `PACKET_STATISTICS`' `tp_drops` gives (that `getsockopt` has no safe wrapper, and
//! the workspace forbids `unsafe`).

use std::io::{self, IoSliceMut};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use socket2::{Domain, Protocol, SockFilter, Socket, Type};
use tokio_util::sync::CancellationToken;

use super::frame::Frame;
use super::hub::Stats;

/// `ETH_P_ALL`: every protocol.
const ETH_P_ALL: u16 = 0x0003;
/// The largest packet read: loopback's MTU is 64 KiB, and a GSO packet can be as large.
const MAX_PACKET: usize = 65_536 + 1024;
/// How often the reader looks at the shutdown token when nothing comes.
const POLL: Duration = Duration::from_millis(200);

/// Opens the raw socket with its filter. Fails with `PermissionDenied` without the privilege.
pub(crate) fn open(ports: &[u16]) -> io::Result<Socket> {
    // The protocol of a packet socket is in network byte order.
    let protocol = Protocol::from(i32::from(ETH_P_ALL.to_be()));
    let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(protocol))?;
    socket.attach_filter(&filter(ports))?;
    socket.set_read_timeout(Some(POLL))?;
    // Room for bursts while the reader is descheduled (the kernel may give less).
    let _ = socket.set_recv_buffer_size(4 << 20);
    setsockopt(&socket, sockopt::RxqOvfl, &1).map_err(io::Error::from)?;
    Ok(socket)
}

/// Reads packets until `shutdown`, queueing each; a full queue drops it (counted). Counts the
/// packets read and the kernel's drops in `stats`.
pub(crate) fn read_loop(
    socket: Socket,
    queue: SyncSender<Frame>,
    stats: &Stats,
    shutdown: &CancellationToken,
) {
    let mut buf = vec![0u8; MAX_PACKET];
    let mut control = nix::cmsg_space!(u32);
    while !shutdown.is_cancelled() {
        let (n, kernel_dropped) = match read_one(&socket, &mut buf, &mut control) {
            Ok(read) => read,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            Err(err) => {
                tracing::warn!(cause = %err, "packet capture stopped: reading the raw socket failed");
                return;
            }
        };
        stats.read.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = kernel_dropped {
            stats
                .kernel_dropped
                .fetch_max(u64::from(count), Ordering::Relaxed);
        }
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let frame = Frame {
            at,
            data: buf[..n].to_vec(),
        };
        match queue.try_send(frame) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// One packet into `buf`: its length, and the kernel's drop count so far when it sent one
/// (it does once the count is not zero).
fn read_one(
    socket: &Socket,
    buf: &mut [u8],
    control: &mut [u8],
) -> nix::Result<(usize, Option<u32>)> {
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        socket.as_raw_fd(),
        &mut iov,
        Some(control),
        MsgFlags::empty(),
    )?;
    let dropped = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::RxqOvfl(count) => Some(count),
        _ => None,
    });
    Ok((msg.bytes, dropped))
}

// Classic BPF, as in <linux/filter.h> and <linux/bpf_common.h>.
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const W: u16 = 0x00;
const H: u16 = 0x08;
const B: u16 = 0x10;
const ABS: u16 = 0x20;
const IND: u16 = 0x40;
const MSH: u16 = 0xa0;
const JEQ: u16 = 0x10;
const JSET: u16 = 0x40;
/// Ancillary data: `SKF_AD_OFF` plus `SKF_AD_PROTOCOL`, `SKF_AD_PKTTYPE`, `SKF_AD_HATYPE`.
const AD_PROTOCOL: u32 = 0xffff_f000;
const AD_PKTTYPE: u32 = 0xffff_f000 + 4;
const AD_HATYPE: u32 = 0xffff_f000 + 28;
/// `PACKET_OUTGOING` and `ARPHRD_LOOPBACK`.
const PACKET_OUTGOING: u32 = 4;
const ARPHRD_LOOPBACK: u32 = 772;
/// More ports than this and the filter lets every TCP/UDP packet through (the jumps of classic
/// BPF reach 255 instructions); the exact match is done after anyway.
const MAX_FILTER_PORTS: usize = 48;

/// One instruction, with jumps by label (resolved by [`assemble`]).
enum Op {
    Label(&'static str),
    Stmt(u16, u32),
    /// Jump if equal (`JEQ`) or if any bit set (`JSET`): to the first label when true, the
    /// second when false (`None`: the next instruction).
    Jump(u16, u32, Option<&'static str>, Option<&'static str>),
}

/// The filter: keep TCP/UDP over IPv4/IPv6 whose source or destination port is one of
/// `ports`, except loopback's outgoing copy (loopback shows each packet leaving and arriving;
/// the arriving copy is kept). IPv4 fragments after the first carry no ports: dropped.
fn filter(ports: &[u16]) -> Vec<SockFilter> {
    use Op::{Jump, Label, Stmt};
    let mut ops = vec![
        Stmt(LD | W | ABS, AD_PKTTYPE),
        Jump(JEQ, PACKET_OUTGOING, None, Some("proto")),
        Stmt(LD | W | ABS, AD_HATYPE),
        Jump(JEQ, ARPHRD_LOOPBACK, Some("drop"), None),
        Label("proto"),
        Stmt(LD | W | ABS, AD_PROTOCOL),
        Jump(JEQ, 0x0800, Some("v4"), None),
        Jump(JEQ, 0x86dd, Some("v6"), Some("drop")),
        Label("v4"),
        Stmt(LD | B | ABS, 9),
        Jump(JEQ, 6, Some("v4ok"), None),
        Jump(JEQ, 17, Some("v4ok"), Some("drop")),
        Label("v4ok"),
        Stmt(LD | H | ABS, 6),
        Jump(JSET, 0x1fff, Some("drop"), None),
        Stmt(LDX | B | MSH, 0),
        Stmt(LD | H | IND, 0),
    ];
    port_checks(&mut ops, ports, false);
    ops.push(Stmt(LD | H | IND, 2));
    port_checks(&mut ops, ports, true);
    ops.extend([
        Label("v6"),
        Stmt(LD | B | ABS, 6),
        Jump(JEQ, 6, Some("v6ok"), None),
        Jump(JEQ, 17, Some("v6ok"), Some("drop")),
        Label("v6ok"),
        Stmt(LD | H | ABS, 40),
    ]);
    port_checks(&mut ops, ports, false);
    ops.push(Stmt(LD | H | ABS, 42));
    port_checks(&mut ops, ports, true);
    ops.extend([
        Label("keep"),
        Stmt(RET, 0x0004_0000),
        Label("drop"),
        Stmt(RET, 0),
    ]);
    assemble(&ops)
}

/// `A` is a port: jump to `keep` if it is one of `ports`; otherwise go on (or to `drop` when
/// `last`).
fn port_checks(ops: &mut Vec<Op>, ports: &[u16], last: bool) {
    if ports.is_empty() || ports.len() > MAX_FILTER_PORTS {
        if last {
            ops.push(Op::Jump(JEQ, 0, Some("keep"), Some("keep")));
        }
        return;
    }
    for (i, &port) in ports.iter().enumerate() {
        let otherwise = (last && i + 1 == ports.len()).then_some("drop");
        ops.push(Op::Jump(JEQ, u32::from(port), Some("keep"), otherwise));
    }
}

/// Resolves labels into classic BPF's relative jump offsets.
fn assemble(ops: &[Op]) -> Vec<SockFilter> {
    let mut labels = std::collections::HashMap::new();
    let mut at = 0usize;
    for op in ops {
        match op {
            Op::Label(name) => {
                labels.insert(*name, at);
            }
            _ => at += 1,
        }
    }
    let mut out = Vec::with_capacity(at);
    for op in ops {
        let here = out.len();
        let offset = |label: Option<&str>| -> u8 {
            let target = label.and_then(|l| labels.get(l)).copied();
            target.map_or(0, |t| {
                u8::try_from(t.saturating_sub(here + 1)).unwrap_or(u8::MAX)
            })
        };
        match op {
            Op::Label(_) => {}
            Op::Stmt(code, k) => out.push(SockFilter::new(*code, 0, 0, *k)),
            Op::Jump(cond, k, jt, jf) => {
                out.push(SockFilter::new(JMP | cond, offset(*jt), offset(*jf), *k));
            }
        }
    }
    out
}

// The workspace's skip rule (a failure in CI or with SOCKLAB_REQUIRE_CAPTURE=1, a recorded skip
// elsewhere), shared by source: this crate cannot depend on socklab-tests, which depends on it.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../../tests/src/skip.rs"]
mod skip;

#[cfg(test)]
mod tests {
    use super::skip::{Need, skip_unless_required};
    use super::*;

    /// A burst larger than a tiny socket buffer: the kernel drops, and the next packet read
    /// says how many.
    #[test]
    fn the_kernels_drops_are_reported_with_the_next_packet() {
        let to = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = to.local_addr().unwrap().port();
        let socket = match open(&[port]) {
            Ok(socket) => socket,
            Err(err) if err.kind() == io::ErrorKind::PermissionDenied => {
                skip_unless_required(
                    "the_kernels_drops_are_reported_with_the_next_packet",
                    Need::Capture,
                    &format!("capturing needs root or CAP_NET_RAW: {err}"),
                );
                return;
            }
            Err(err) => panic!("{err}"),
        };
        // The kernel's smallest buffer holds a few of these.
        socket.set_recv_buffer_size(0).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let from = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let datagram = [0u8; 1000];
        let send = || from.send_to(&datagram, ("127.0.0.1", port)).unwrap();
        for _ in 0..100 {
            send();
        }
        let (mut buf, mut control) = (vec![0u8; MAX_PACKET], nix::cmsg_space!(u32));
        let mut queued = 0;
        // The packets queued before the buffer filled carry no drops.
        while let Ok((_, dropped)) = read_one(&socket, &mut buf, &mut control) {
            assert_eq!(dropped, None);
            queued += 1;
        }
        assert!(queued < 100, "the buffer held all {queued}");
        send();
        let (n, dropped) = read_one(&socket, &mut buf, &mut control).unwrap();
        assert_eq!(n, 20 + 8 + datagram.len());
        assert_eq!(
            dropped,
            Some(100 - queued),
            "dropped of 100 with {queued} queued"
        );
    }

    #[test]
    fn the_filter_fits_classic_bpf_jumps() {
        let ports: Vec<u16> = (1..=MAX_FILTER_PORTS as u16).collect();
        let program = filter(&ports);
        // 4 port checks of 48 ports plus the fixed part: every jump stays under 256.
        assert!(program.len() < 255, "{}", program.len());
        assert!(filter(&[]).len() < 40);
    }
}
