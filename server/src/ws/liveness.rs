//! WebSocket liveness, shared by the bridge (`/ws`) and the monitor feed (`/api/events`):
//! the server pings every `--ping-interval` and drops a peer it has not heard from (any frame,
//! a pong included) for two intervals, so a vanished or frozen client cannot hold a
//! `--max-connections` slot forever.

use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use tokio::time::{Instant, Sleep};

/// What [`Liveness::due`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Beat {
    /// Time to ping the peer.
    Ping,
    /// The peer has said nothing for two ping intervals: drop it.
    Silent,
}

/// The ping schedule and the silence deadline of one WebSocket, as clock checks: no timer of
/// its own, so a session that already has one (the bridge's) arms it at
/// [`Heartbeat::next_check`] and asks [`Heartbeat::check`] when it fires.
#[derive(Debug)]
pub(crate) struct Heartbeat {
    every: Duration,
    last_heard: Instant,
    next_ping: Instant,
}

impl Heartbeat {
    /// Pings every `every` from `now`; silent for `2 × every` is dead.
    pub(crate) fn new(every: Duration, now: Instant) -> Self {
        Heartbeat {
            every,
            last_heard: now,
            next_ping: now + every,
        }
    }

    /// The peer sent something (data, pong, ping) at `now`: it is alive. A plain store, as it
    /// runs on every message.
    pub(crate) fn heard(&mut self, now: Instant) {
        self.last_heard = now;
    }

    /// When [`Heartbeat::check`] may next find something: a ping due, or the silence deadline.
    pub(crate) fn next_check(&self) -> Instant {
        self.next_ping.min(self.silent_at())
    }

    /// What is due at `now`: the peer silent for two intervals, a ping (the next one is then
    /// scheduled an interval later), or nothing.
    pub(crate) fn check(&mut self, now: Instant) -> Option<Beat> {
        if now >= self.silent_at() {
            return Some(Beat::Silent);
        }
        if now < self.next_ping {
            return None;
        }
        self.next_ping = (self.next_ping + self.every).max(now);
        Some(Beat::Ping)
    }

    fn silent_at(&self) -> Instant {
        self.last_heard + self.every * 2
    }
}

/// A [`Heartbeat`] with its own timer, for a session with no other (the monitor feed).
///
/// One timer for the whole session, re-armed only when it fires: [`Liveness::heard`] runs on
/// every message and must stay a plain store.
#[derive(Debug)]
pub(crate) struct Liveness {
    beat: Heartbeat,
    timer: std::pin::Pin<Box<Sleep>>,
}

impl Liveness {
    /// Pings every `every`; silent for `2 × every` is dead.
    pub(crate) fn new(every: Duration) -> Self {
        let now = Instant::now();
        Liveness {
            beat: Heartbeat::new(every, now),
            timer: Box::pin(tokio::time::sleep_until(now + every)),
        }
    }

    /// The peer sent something (data, pong, ping): it is alive.
    pub(crate) fn heard(&mut self) {
        self.beat.heard(Instant::now());
    }

    /// Waits until a ping is due or the peer counts as gone. Cancel-safe (for `select!`).
    pub(crate) async fn due(&mut self) -> Beat {
        loop {
            self.timer.as_mut().await;
            let beat = self.beat.check(Instant::now());
            self.timer.as_mut().reset(self.beat.next_check());
            if let Some(beat) = beat {
                return beat;
            }
        }
    }
}

/// Sends a ping, giving up after `write_timeout`; `false` when the peer cannot take it.
pub(crate) async fn ping(socket: &mut WebSocket, write_timeout: Duration) -> bool {
    let ping = socket.send(Message::Ping(Bytes::from_static(b"socklab")));
    matches!(tokio::time::timeout(write_timeout, ping).await, Ok(Ok(())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_dropped_after_two_intervals_and_an_answering_one_is_not() {
        let every = Duration::from_secs(1);
        let start = Instant::now();
        let mut silent = Liveness::new(every);
        assert_eq!(silent.due().await, Beat::Ping);
        assert_eq!(start.elapsed(), every);
        assert_eq!(silent.due().await, Beat::Silent);
        assert_eq!(start.elapsed(), every * 2);

        let mut alive = Liveness::new(every);
        for _ in 0..5 {
            assert_eq!(alive.due().await, Beat::Ping);
            alive.heard();
        }
    }
}
