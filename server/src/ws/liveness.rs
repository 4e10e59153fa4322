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

/// The ping timer and the silence deadline of one WebSocket.
///
/// One timer for the whole session, re-armed only when it fires: [`Liveness::heard`] runs on
/// every message and must stay a plain store.
#[derive(Debug)]
pub(crate) struct Liveness {
    every: Duration,
    last_heard: Instant,
    next_ping: Instant,
    timer: std::pin::Pin<Box<Sleep>>,
}

impl Liveness {
    /// Pings every `every`; silent for `2 × every` is dead.
    pub(crate) fn new(every: Duration) -> Self {
        let now = Instant::now();
        Liveness {
            every,
            last_heard: now,
            next_ping: now + every,
            timer: Box::pin(tokio::time::sleep_until(now + every)),
        }
    }

    /// The peer sent something (data, pong, ping): it is alive.
    pub(crate) fn heard(&mut self) {
        self.last_heard = Instant::now();
    }

    /// Waits until a ping is due or the peer counts as gone. Cancel-safe (for `select!`).
    pub(crate) async fn due(&mut self) -> Beat {
        loop {
            self.timer.as_mut().await;
            let now = Instant::now();
            let deadline = self.last_heard + self.every * 2;
            if now >= deadline {
                return Beat::Silent;
            }
            let ping = now >= self.next_ping;
            if ping {
                self.next_ping = (self.next_ping + self.every).max(now);
            }
            self.timer.as_mut().reset(self.next_ping.min(deadline));
            if ping {
                return Beat::Ping;
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
