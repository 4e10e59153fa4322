//! Redis → the cluster bus: the subscriber task, and what it does with each message — other
//! instances' events applied to what is known of them, within the `--monitor-redis-max-*`
//! caps ([`Limits`](super::hub::Limits)); what is refused is counted and logged, rarely.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use socklab_protocol::MonitorEvent;
use socklab_protocol::events::SessionOpened;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{
    BACKOFF, CONTROL, Cluster, Control, EVENTS, HEARTBEAT, Op, Peer, REDIS_TIMEOUT, SILENCE,
    WARN_EVERY, backoff,
};

/// Longest instance name taken from Redis (`--instance`, or host name and port).
const MAX_INSTANCE_NAME: usize = 128;
/// Longest address, time or tag in a remote `session_opened` (socklab's own are far shorter),
/// so each kept session costs a bounded amount of memory whatever `--monitor-redis-max-event`.
const MAX_FIELD: usize = 80;

/// Why a message was dropped.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Malformed,
    Oversized,
    OverCap,
}

/// Redis → the cluster bus: other instances' events and control messages.
pub(super) async fn subscribe(
    cluster: Arc<Cluster>,
    client: redis::Client,
    shutdown: CancellationToken,
) {
    let mut delay = BACKOFF.0;
    loop {
        let connected = async {
            let mut pubsub = client.get_async_pubsub().await?;
            // One channel per command: each is confirmed by one reply.
            pubsub.subscribe(EVENTS).await?;
            pubsub.subscribe(CONTROL).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let mut pubsub = match tokio::time::timeout(REDIS_TIMEOUT, connected).await {
            Ok(Ok(pubsub)) => pubsub,
            failed => {
                let why = match failed {
                    Ok(Err(err)) => err.to_string(),
                    _ => "timed out".to_owned(),
                };
                cluster.set_link(None, Some(false), Some(why));
                if backoff(&mut delay, &shutdown).await {
                    continue;
                }
                return;
            }
        };
        delay = BACKOFF.0;
        cluster.set_link(None, Some(true), None);
        cluster.want_hello.notify_one();
        let mut expiry = tokio::time::interval(HEARTBEAT);
        let mut messages = pubsub.on_message();
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(msg) => cluster.received(msg.get_channel_name(), msg.get_payload_bytes()),
                    None => break,
                },
                _ = expiry.tick() => cluster.expire(),
                () = shutdown.cancelled() => return,
            }
        }
        cluster.set_link(Some(false), Some(false), Some("connection lost".to_owned()));
        cluster.want_reconnect.notify_one();
        cluster.forget(None, "cluster monitor lost Redis");
        if !backoff(&mut delay, &shutdown).await {
            return;
        }
    }
}

impl Cluster {
    /// One message from Redis.
    pub(super) fn received(&self, channel: &str, payload: &[u8]) {
        if payload.len() > self.limits.event_bytes {
            return self.refuse(Refused::Oversized);
        }
        if channel == CONTROL {
            return self.received_control(payload);
        }
        let Some((event, json)) = parse_event(payload) else {
            return self.refuse(Refused::Malformed);
        };
        let instance = match &event {
            MonitorEvent::SessionOpened(e) => e.instance.as_deref(),
            MonitorEvent::Message(e) => e.instance.as_deref(),
            MonitorEvent::SessionClosed(e) => e.instance.as_deref(),
            MonitorEvent::Lagged { .. } | MonitorEvent::Status(_) | MonitorEvent::Packet(_) => None,
        };
        let Some(instance) = instance else {
            return self.refuse(Refused::Malformed);
        };
        if instance == self.instance {
            return;
        }
        if let Err(why) = self.heard(instance) {
            return self.refuse(why);
        }
        match self.track(instance, &event) {
            Ok(true) => drop(self.bus.send(Utf8Bytes::from(json))),
            Ok(false) => {}
            Err(why) => self.refuse(why),
        }
    }

    fn received_control(&self, payload: &[u8]) {
        let Ok(msg) = serde_json::from_slice::<Control>(payload) else {
            return self.refuse(Refused::Malformed);
        };
        if msg.instance == self.instance {
            return;
        }
        match msg.op {
            Op::Bye => {
                let reason = format!("instance {} stopped", msg.instance);
                self.forget(Some(&msg.instance), &reason);
            }
            op => match self.heard(&msg.instance) {
                Err(why) => self.refuse(why),
                Ok(()) if op == Op::Hello => self.want_snapshot.notify_one(),
                Ok(()) => {}
            },
        }
    }

    /// Keeps the remote session map up to date with `event` of `instance`, within the caps.
    /// `Ok(true)`: pass it on; `Ok(false)`: nothing new (a session already known, or the
    /// message or close of a session not kept).
    fn track(&self, instance: &str, event: &MonitorEvent) -> Result<bool, Refused> {
        let mut state = self.lock();
        let state = &mut *state;
        match event {
            MonitorEvent::SessionOpened(e) => {
                if !fits(e) {
                    return Err(Refused::Malformed);
                }
                let key = (instance.to_owned(), e.id);
                if state.remote.contains_key(&key) {
                    // Already known (a snapshot answering someone's hello).
                    return Ok(false);
                }
                let peer = state.heard.get_mut(instance).ok_or(Refused::OverCap)?;
                if peer.sessions >= self.limits.per_instance
                    || state.remote.len() >= self.limits.sessions
                {
                    return Err(Refused::OverCap);
                }
                peer.sessions += 1;
                let counts = e.counts().unwrap_or_default();
                state.remote.insert(key, (e.clone(), counts));
                Ok(true)
            }
            MonitorEvent::SessionClosed(e) => {
                let known = state.remote.remove(&(instance.to_owned(), e.id)).is_some();
                if known && let Some(peer) = state.heard.get_mut(instance) {
                    peer.sessions = peer.sessions.saturating_sub(1);
                }
                Ok(known)
            }
            MonitorEvent::Message(m) => match state.remote.get_mut(&(instance.to_owned(), m.id)) {
                Some((_, counts)) => {
                    counts.count(m.dir, m.bytes, m.seq);
                    Ok(true)
                }
                None => Ok(false),
            },
            MonitorEvent::Lagged { .. } | MonitorEvent::Status(_) | MonitorEvent::Packet(_) => {
                Ok(false)
            }
        }
    }

    /// Counts a refused message, and logs at most every [`WARN_EVERY`].
    fn refuse(&self, why: Refused) {
        let counter = match why {
            Refused::Malformed => &self.dropped.malformed,
            Refused::Oversized => &self.dropped.oversized,
            Refused::OverCap => &self.dropped.over_cap,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        if state.warned.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        state.warned = Some(Instant::now());
        drop(state);
        let info = self.info();
        tracing::warn!(
            malformed = info.dropped_malformed,
            oversized = info.dropped_oversized,
            over_cap = info.dropped_over_cap,
            remote_sessions = info.remote_sessions,
            instances = info.instances,
            "cluster monitor: dropping messages from Redis (totals so far; next report in {}s \
             at the earliest)",
            WARN_EVERY.as_secs()
        );
    }

    /// Notes that `instance` spoke; refused when its name is too long, or it is new and
    /// [`Limits::instances`] are already tracked. One not heard from before (new, or back after Redis or it was away)
    /// may have published its sessions before this instance subscribed, and may not have
    /// heard this instance's `hello`: ask again, so both sides get each other's.
    fn heard(&self, instance: &str) -> Result<(), Refused> {
        let mut state = self.lock();
        if let Some(peer) = state.heard.get_mut(instance) {
            peer.heard = Instant::now();
            return Ok(());
        }
        if instance.len() > MAX_INSTANCE_NAME {
            return Err(Refused::Malformed);
        }
        if state.heard.len() >= self.limits.instances {
            return Err(Refused::OverCap);
        }
        let peer = Peer {
            heard: Instant::now(),
            sessions: 0,
        };
        state.heard.insert(instance.to_owned(), peer);
        drop(state);
        self.want_hello.notify_one();
        Ok(())
    }

    /// Closes the sessions of instances not heard from for [`SILENCE`].
    fn expire(&self) {
        let silent: Vec<String> = self
            .lock()
            .heard
            .iter()
            .filter(|(_, peer)| peer.heard.elapsed() > SILENCE)
            .map(|(i, _)| i.clone())
            .collect();
        for instance in silent {
            let reason = format!(
                "no word from instance {instance} for {}s",
                SILENCE.as_secs()
            );
            tracing::warn!(
                instance,
                "cluster monitor: instance silent; its sessions dropped"
            );
            self.forget(Some(&instance), &reason);
        }
    }
}

/// An event from Redis and its JSON, if it is one.
fn parse_event(payload: &[u8]) -> Option<(MonitorEvent, &str)> {
    let json = std::str::from_utf8(payload).ok()?;
    let event = serde_json::from_str::<MonitorEvent>(json).ok()?;
    Some((event, json))
}

/// Whether a remote `session_opened` has fields of sane sizes (it is kept until its close).
fn fits(e: &SessionOpened) -> bool {
    [Some(&e.peer), Some(&e.local), Some(&e.at), e.tag.as_ref()]
        .into_iter()
        .flatten()
        .all(|f| f.len() <= MAX_FIELD)
}

#[cfg(test)]
mod tests {
    use super::super::hub::Limits;
    use super::*;
    use socklab_protocol::events::MessageEvent;
    use socklab_protocol::events::{SessionClosed, SessionCounts};
    use socklab_protocol::{Direction, SessionKind};
    use tokio::sync::broadcast;

    const LIMITS: Limits = Limits {
        sessions: 3,
        per_instance: 2,
        instances: 2,
        event_bytes: 1024,
    };

    fn cluster() -> Arc<Cluster> {
        Arc::new(Cluster::new("a", "redis://127.0.0.1:1/", 64, LIMITS))
    }

    fn opened(instance: &str, id: u64) -> MonitorEvent {
        MonitorEvent::SessionOpened(SessionOpened {
            id,
            kind: SessionKind::Tcp,
            peer: "127.0.0.1:5".into(),
            local: "127.0.0.1:6".into(),
            at: "2026-01-01T00:00:00+00:00".into(),
            via: None,
            tag: None,
            handshake: None,
            instance: Some(instance.into()),
            bytes_in: None,
            bytes_out: None,
            messages_in: None,
            messages_out: None,
        })
    }

    fn message(instance: &str, id: u64, dir: Direction, bytes: u64, seq: u64) -> MonitorEvent {
        MonitorEvent::Message(MessageEvent {
            id,
            kind: SessionKind::Tcp,
            dir,
            bytes,
            preview: "hi".into(),
            at: "t".into(),
            seq: Some(seq),
            instance: Some(instance.into()),
        })
    }

    fn closed(instance: &str, id: u64) -> MonitorEvent {
        MonitorEvent::SessionClosed(SessionClosed {
            id,
            kind: SessionKind::Tcp,
            at: "2026-01-01T00:00:00+00:00".into(),
            bytes_in: 0,
            bytes_out: 0,
            reason: "client closed".into(),
            instance: Some(instance.into()),
        })
    }

    fn json(e: &MonitorEvent) -> Vec<u8> {
        serde_json::to_vec(e).unwrap()
    }

    fn drain(rx: &mut broadcast::Receiver<Utf8Bytes>) -> Vec<MonitorEvent> {
        std::iter::from_fn(|| rx.try_recv().ok())
            .map(|b| serde_json::from_str(b.as_str()).unwrap())
            .collect()
    }

    #[test]
    fn remote_sessions_are_tracked_once_and_own_events_skipped() {
        let c = cluster();
        let mut rx = c.subscribe();
        c.received(EVENTS, &json(&opened("b", 1)));
        c.received(EVENTS, &json(&opened("b", 1)));
        c.received(EVENTS, &json(&opened("a", 1)));
        c.received(EVENTS, &json(&message("b", 1, Direction::In, 2, 1)));
        c.received(EVENTS, b"not json");
        let events = drain(&mut rx);
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(c.snapshot().len(), 2); // status + one remote session
    }

    #[test]
    fn remote_sessions_keep_exact_counts_for_the_snapshot() {
        let c = cluster();
        // Learned from b's snapshot (an answer to a hello): 2 messages in, 1 out so far.
        let MonitorEvent::SessionOpened(mut snap) = opened("b", 4) else {
            unreachable!()
        };
        snap.set_counts(Some(SessionCounts {
            bytes_in: 6,
            bytes_out: 25,
            messages_in: 2,
            messages_out: 1,
        }));
        c.received(EVENTS, &json(&MonitorEvent::SessionOpened(snap)));
        // Message 2 was counted in the snapshot and published after it: counted once.
        c.received(EVENTS, &json(&message("b", 4, Direction::In, 3, 2)));
        c.received(EVENTS, &json(&message("b", 4, Direction::In, 3, 3)));
        c.received(EVENTS, &json(&message("b", 4, Direction::Out, 25, 2)));
        // A session known from its live open starts from zero.
        c.received(EVENTS, &json(&opened("b", 5)));
        c.received(EVENTS, &json(&message("b", 5, Direction::In, 4, 1)));
        let counts: Vec<SessionCounts> = c
            .snapshot()
            .into_iter()
            .filter_map(|e| match e {
                MonitorEvent::SessionOpened(o) => o.counts(),
                _ => None,
            })
            .collect();
        assert_eq!(
            counts,
            vec![
                SessionCounts {
                    bytes_in: 9,
                    bytes_out: 50,
                    messages_in: 3,
                    messages_out: 2,
                },
                SessionCounts {
                    bytes_in: 4,
                    messages_in: 1,
                    ..SessionCounts::default()
                },
            ]
        );
    }

    #[test]
    fn bye_and_lost_redis_close_remote_sessions_with_a_reason() {
        let c = cluster();
        c.received(EVENTS, &json(&opened("b", 1)));
        c.received(EVENTS, &json(&opened("c", 7)));
        let mut rx = c.subscribe();
        c.received(CONTROL, br#"{"op":"bye","instance":"b"}"#);
        c.forget(None, "cluster monitor lost Redis");
        let reasons: Vec<(String, Option<String>)> = drain(&mut rx)
            .into_iter()
            .map(|e| match e {
                MonitorEvent::SessionClosed(c) => (c.reason, c.instance),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            reasons,
            vec![
                ("instance b stopped".to_owned(), Some("b".to_owned())),
                (
                    "cluster monitor lost Redis".to_owned(),
                    Some("c".to_owned())
                ),
            ]
        );
        assert_eq!(c.snapshot().len(), 1);
    }

    #[test]
    fn status_changes_are_announced_once() {
        let c = cluster();
        let mut rx = c.subscribe();
        c.set_link(Some(true), None, None);
        c.set_link(None, Some(true), None);
        c.set_link(None, Some(true), None);
        c.set_link(Some(false), None, Some("connection refused".into()));
        let states: Vec<(String, String)> = drain(&mut rx)
            .into_iter()
            .map(|e| match e {
                MonitorEvent::Status(s) => (s.state, s.detail),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(states.len(), 2);
        assert_eq!(states[0].0, "ok");
        assert_eq!(states[1].0, "degraded");
        assert!(
            states[1].1.contains("connection refused"),
            "{}",
            states[1].1
        );
    }

    #[test]
    fn passwords_are_not_shown() {
        let c = Cluster::new("a", "redis://user:secret@127.0.0.1:6379/", 16, LIMITS);
        assert!(!c.url.contains("secret"), "{}", c.url);
        assert!(c.url.contains("user"), "{}", c.url);
    }

    #[test]
    fn remote_state_is_capped_and_refusals_counted() {
        let c = cluster();
        let mut rx = c.subscribe();
        // Per instance: b gets 2 of 3; in total: c gets 1 of 2 (3 kept in all).
        for id in 1..=3 {
            c.received(EVENTS, &json(&opened("b", id)));
        }
        for id in 1..=2 {
            c.received(EVENTS, &json(&opened("c", id)));
        }
        // A third instance is not tracked at all.
        c.received(EVENTS, &json(&opened("d", 1)));
        c.received(CONTROL, br#"{"op":"alive","instance":"e"}"#);
        // Malformed, oversized, fields out of bounds, an event without an instance.
        c.received(EVENTS, b"not json");
        c.received(CONTROL, b"{}");
        c.received(EVENTS, &vec![b' '; 2000]);
        let mut long_tag = opened("b", 9);
        if let MonitorEvent::SessionOpened(o) = &mut long_tag {
            o.tag = Some("t".repeat(200));
        }
        c.received(EVENTS, &json(&long_tag));
        c.received(EVENTS, &json(&MonitorEvent::Lagged { skipped: 1 }));
        c.received(EVENTS, &json(&opened(&"x".repeat(200), 1)));
        // The close of a session not kept is not passed on; one of a kept one frees a place.
        c.received(EVENTS, &json(&closed("b", 3)));
        c.received(EVENTS, &json(&closed("b", 1)));
        c.received(EVENTS, &json(&opened("c", 2)));
        let info = c.info();
        assert_eq!((info.instances, info.remote_sessions), (2, 3));
        assert_eq!(info.dropped_over_cap, 4, "{info:?}");
        assert_eq!(info.dropped_malformed, 5, "{info:?}");
        assert_eq!(info.dropped_oversized, 1, "{info:?}");
        let passed: Vec<(Option<u64>, bool)> = drain(&mut rx)
            .iter()
            .map(|e| (e.session_id(), matches!(e, MonitorEvent::SessionOpened(_))))
            .collect();
        let expected = [(1, true), (2, true), (1, true), (1, false), (2, true)];
        let expected: Vec<(Option<u64>, bool)> =
            expected.iter().map(|&(id, o)| (Some(id), o)).collect();
        assert_eq!(passed, expected);
    }
}
