//! Where captured packets are kept, bounded: per session the first [`FIRST`] packets (the
//! handshake, with a WebSocket's HTTP upgrade) each cut to its headers plus
//! `--capture-head-payload` bytes, and the last [`LAST`] cut to headers plus
//! `--capture-payload` bytes; at most `--capture-sessions` open sessions and the last
//! `--capture-closed` closed ones.
//!
//! Worst case per session, with the defaults (2048 and 128 payload bytes), where 40 bytes is
//! a [`Packet`] and 120 its most header bytes: 32 × (40 + 120 + 2048) + 256 × (40 + 120 + 128)
//! = 144,384 bytes, plus about 120 of bookkeeping (see README; measured by
//! `a_full_session_stays_within_its_worst_case`).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use socklab_protocol::{Direction, SessionKind};

use crate::registry::SessionRef;

/// Packets kept from the start of a session: the handshake and the first exchanges.
pub const FIRST: usize = 32;
/// Packets kept from the end of a session: the latest exchanges and the teardown.
pub const LAST: usize = 256;
/// Most header bytes kept of one packet: IPv4's 60 + TCP's 60 (IPv6 with extension headers is
/// cut there; the headers the lesson shows fit).
pub const MAX_HEADERS: usize = 120;

/// One kept packet.
#[derive(Debug, Clone)]
pub struct Packet {
    /// When the capture thread read it, since the Unix epoch.
    pub at: Duration,
    /// Its length on the wire (from its IP header on).
    pub orig_len: u32,
    /// Its first bytes: headers and at most `--capture-payload` payload bytes.
    pub data: Box<[u8]>,
}

/// How much of each packet is kept.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most open sessions kept (`--capture-sessions`).
    pub open: usize,
    /// Most closed sessions kept (`--capture-closed`).
    pub closed: usize,
    /// Payload bytes kept of each of the first [`FIRST`] packets (`--capture-head-payload`).
    pub head_payload: usize,
    /// Payload bytes kept of the later ones (`--capture-payload`).
    pub payload: usize,
}

impl Limits {
    /// The most bytes one session's packets can take (without its ~120 bytes of bookkeeping).
    pub fn worst_case_per_session(&self) -> usize {
        let packet = std::mem::size_of::<Packet>() + MAX_HEADERS;
        FIRST * (packet + self.head_payload) + LAST * (packet + self.payload)
    }
}

/// One session's kept packets.
#[derive(Debug)]
pub struct SessionPackets {
    /// The session as the registry knew it.
    pub session: SessionRef,
    first: Vec<Packet>,
    last: VecDeque<Packet>,
    /// Every packet seen, kept or not.
    pub seen: u64,
    /// The first TCP sequence number seen in each direction (in, out), for relative numbers.
    base_seq: [Option<u32>; 2],
    closed: bool,
}

impl SessionPackets {
    fn new(session: SessionRef) -> Self {
        SessionPackets {
            session,
            first: Vec::new(),
            last: VecDeque::new(),
            seen: 0,
            base_seq: [None, None],
            closed: false,
        }
    }

    /// Keeps `packet` if it is among the first or the last.
    fn push(&mut self, packet: Packet) {
        self.seen += 1;
        if self.first.len() < FIRST {
            self.first.push(packet);
            return;
        }
        if self.last.len() == LAST {
            self.last.pop_front();
        }
        self.last.push_back(packet);
    }

    /// The kept packets, oldest first.
    pub fn packets(&self) -> impl Iterator<Item = &Packet> {
        self.first.iter().chain(self.last.iter())
    }

    /// The heap and inline bytes this session's packets take.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        let slots = self.first.capacity() + self.last.capacity();
        std::mem::size_of::<Self>()
            + slots * std::mem::size_of::<Packet>()
            + self.packets().map(|p| p.data.len()).sum::<usize>()
    }

    /// `seq`/`ack` relative to the first sequence number seen each way (the SYNs').
    pub fn relative(&mut self, dir: Direction, seq: u32, ack: u32) -> (u32, Option<u32>) {
        let (mine, theirs) = match dir {
            Direction::In => (0, 1),
            Direction::Out => (1, 0),
        };
        let base = *self.base_seq[mine].get_or_insert(seq);
        let ack = self.base_seq[theirs].map(|b| ack.wrapping_sub(b));
        (seq.wrapping_sub(base), ack)
    }
}

/// Every session's kept packets.
#[derive(Debug)]
pub struct Store {
    sessions: HashMap<u64, SessionPackets>,
    /// Closed sessions, oldest first.
    closed: VecDeque<u64>,
    limits: Limits,
}

/// Why a packet was not kept.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Store {
    /// An empty store.
    pub fn new(limits: Limits) -> Self {
        Store {
            sessions: HashMap::new(),
            closed: VecDeque::new(),
            limits,
        }
    }

    /// Keeps the first bytes of a packet of `session` (`data` from its IP header on, whose
    /// first `headers` bytes are headers) and returns the session's entry; `Err(Full)` when
    /// the session is new and `--capture-sessions` open sessions are already kept.
    pub fn keep(
        &mut self,
        session: SessionRef,
        at: Duration,
        data: &[u8],
        headers: usize,
    ) -> Result<&mut SessionPackets, Full> {
        let open = self.sessions.len() - self.closed.len();
        if !self.sessions.contains_key(&session.id) && open >= self.limits.open {
            return Err(Full);
        }
        let limits = self.limits;
        let entry = self
            .sessions
            .entry(session.id)
            .or_insert_with(|| SessionPackets::new(session));
        let payload = if entry.first.len() < FIRST {
            limits.head_payload
        } else {
            limits.payload
        };
        let keep = headers.min(MAX_HEADERS) + payload;
        entry.push(Packet {
            at,
            orig_len: u32::try_from(data.len()).unwrap_or(u32::MAX),
            data: data[..data.len().min(keep)].into(),
        });
        Ok(entry)
    }

    /// Marks sessions the registry no longer has as closed and forgets the oldest closed ones
    /// beyond `--capture-closed`.
    pub fn sweep(&mut self, is_open: impl Fn(u64) -> bool) {
        let mut newly: Vec<u64> = self
            .sessions
            .values_mut()
            .filter(|s| !s.closed && !is_open(s.session.id))
            .map(|s| {
                s.closed = true;
                s.session.id
            })
            .collect();
        newly.sort_unstable();
        self.closed.extend(newly);
        while self.closed.len() > self.limits.closed {
            if let Some(old) = self.closed.pop_front() {
                self.sessions.remove(&old);
            }
        }
    }

    /// The session `id`, if its packets are kept.
    #[cfg(test)]
    pub fn get(&self, id: u64) -> Option<&SessionPackets> {
        self.sessions.get(&id)
    }

    /// The packets of session `id` and of the sessions that serve it (a `ws` session's
    /// upstream `tcp`), merged in time order.
    pub fn with_upstreams(&self, id: u64) -> Vec<&Packet> {
        let mut packets: Vec<&Packet> = self
            .sessions
            .values()
            .filter(|s| s.session.id == id || s.session.via == Some(id))
            .flat_map(|s| s.packets())
            .collect();
        packets.sort_by_key(|p| p.at);
        packets
    }

    /// The kind of a kept session.
    pub fn kind(&self, id: u64) -> Option<SessionKind> {
        self.sessions.get(&id).map(|s| s.session.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        open: 10,
        closed: 10,
        head_payload: 2048,
        payload: 128,
    };

    fn session(id: u64) -> SessionRef {
        SessionRef {
            id,
            kind: SessionKind::Tcp,
            via: None,
        }
    }

    fn at(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn the_first_and_the_last_packets_are_kept() {
        let mut store = Store::new(LIMITS);
        for n in 0..1000 {
            store.keep(session(1), at(n), &[0; 10], 10).unwrap();
        }
        let s = store.get(1).unwrap();
        let at: Vec<u64> = s.packets().map(|p| p.at.as_micros() as u64).collect();
        assert_eq!(at.len(), FIRST + LAST);
        assert_eq!(at[..3], [0, 1, 2]);
        assert_eq!(at[FIRST - 1], FIRST as u64 - 1);
        assert_eq!(at[FIRST], 1000 - LAST as u64);
        assert_eq!(*at.last().unwrap(), 999);
        assert_eq!(s.seen, 1000);
    }

    #[test]
    fn headers_are_kept_whole_and_payloads_cut() {
        let mut store = Store::new(LIMITS);
        let big = vec![0u8; 65536];
        for n in 0..(FIRST + 1) as u64 {
            store.keep(session(1), at(n), &big, 52).unwrap();
        }
        let s = store.get(1).unwrap();
        let lens: Vec<(usize, u32)> = s.packets().map(|p| (p.data.len(), p.orig_len)).collect();
        assert_eq!(lens[0], (52 + 2048, 65536));
        assert_eq!(lens[FIRST], (52 + 128, 65536));
        // A short packet is kept whole.
        store.keep(session(2), at(0), &[1; 60], 52).unwrap();
        assert_eq!(
            store.get(2).unwrap().packets().next().unwrap().data.len(),
            60
        );
    }

    #[test]
    fn a_full_session_stays_within_its_worst_case() {
        let mut store = Store::new(LIMITS);
        let big = vec![0u8; 65536];
        for n in 0..10_000 {
            store.keep(session(1), at(n), &big, 200).unwrap();
        }
        let measured = store.get(1).unwrap().bytes();
        let worst = LIMITS.worst_case_per_session();
        println!("a full session takes {measured} bytes; documented worst case {worst} + ~120");
        assert_eq!(
            worst, 144_384,
            "the figure in README and in this module's doc"
        );
        assert!(measured <= worst + 256, "{measured} > {worst}");
        assert!(
            measured >= worst - 256,
            "{measured} is far below {worst}: not full?"
        );
    }

    #[test]
    fn open_sessions_are_bounded_and_closed_ones_age_out() {
        let limits = Limits {
            open: 2,
            closed: 1,
            ..LIMITS
        };
        let mut store = Store::new(limits);
        assert!(store.keep(session(1), at(0), &[], 0).is_ok());
        assert!(store.keep(session(2), at(0), &[], 0).is_ok());
        assert_eq!(store.keep(session(3), at(0), &[], 0).err(), Some(Full));
        store.sweep(|id| id == 2);
        assert!(store.keep(session(3), at(0), &[], 0).is_ok());
        store.sweep(|id| id == 3);
        // 1 and 2 closed; only the last one closed is kept.
        assert!(store.get(1).is_none());
        assert!(store.get(2).is_some());
    }

    #[test]
    fn sequence_numbers_are_relative_to_each_way_s_first() {
        let mut s = SessionPackets::new(session(1));
        assert_eq!(s.relative(Direction::In, 1000, 0), (0, None));
        assert_eq!(s.relative(Direction::Out, 5000, 1001), (0, Some(1)));
        assert_eq!(s.relative(Direction::In, 1001, 5001), (1, Some(1)));
    }
}
