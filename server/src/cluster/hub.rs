//! The running [`Cluster`]: what one instance knows of the others (their open sessions, when
//! each was last heard from), whether Redis is reachable, and the bus the feed reads. The
//! tasks that keep it up to date are `feed.rs` (Redis → here) and `outbox.rs` (here → Redis).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use socklab_protocol::MonitorEvent;
use socklab_protocol::events::{
    ClusterInfo, FeedStatus, SessionClosed, SessionCounts, SessionOpened,
};
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::clock::rfc3339_now;

/// The pub/sub channel of session events.
pub const EVENTS: &str = "socklab:events";
/// The pub/sub channel of instance-to-instance messages.
pub const CONTROL: &str = "socklab:control";
/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not heard from for this long is taken for gone, its sessions closed.
pub const SILENCE: Duration = Duration::from_secs(15);
/// Connecting or answering, Redis gets this long before it counts as unreachable.
pub(super) const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection delays grow from the first to the last.
pub(super) const BACKOFF: (Duration, Duration) =
    (Duration::from_millis(200), Duration::from_secs(3));
/// Dropped messages are logged at most this often (a flood must not flood the log).
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// How much of the others' state one instance keeps (the `--monitor-redis-max-*` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Remote sessions kept, all instances together.
    pub sessions: usize,
    /// Remote sessions kept per instance.
    pub per_instance: usize,
    /// Other instances tracked.
    pub instances: usize,
    /// Largest message taken from Redis, in bytes.
    pub event_bytes: usize,
}

impl Limits {
    /// The limits the flags give.
    pub fn from_config(config: &crate::config::Config) -> Self {
        Limits {
            sessions: config.monitor_redis_max_sessions,
            per_instance: config.monitor_redis_max_per_instance,
            instances: config.monitor_redis_max_instances,
            event_bytes: config.monitor_redis_max_event,
        }
    }
}

/// Messages from Redis that were not taken, by why (plain counters: cheap to read anywhere).
#[derive(Debug, Default)]
pub struct Dropped {
    /// Not a socklab event or control message, or with fields out of bounds.
    pub malformed: AtomicU64,
    /// Larger than `--monitor-redis-max-event`.
    pub oversized: AtomicU64,
    /// A session or instance beyond the `--monitor-redis-max-*` caps.
    pub over_cap: AtomicU64,
}

/// The instance name when `--monitor-redis` is given without `--instance`: the host name and
/// the first HTTP port, unique on one network.
pub fn default_instance(http: &[SocketAddr]) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "socklab".to_owned());
    match http.first() {
        Some(http) => format!("{host}:{}", http.port()),
        None => host,
    }
}

/// A message on [`CONTROL`].
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Control {
    pub(super) op: Op,
    pub(super) instance: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Op {
    Hello,
    Alive,
    Bye,
}

/// The cluster side of one instance's monitor.
#[derive(Debug)]
pub struct Cluster {
    /// This instance's name; its own events come back from Redis and are skipped.
    pub(super) instance: String,
    /// Where Redis is, for the `degraded` message.
    pub(super) url: String,
    /// Other instances' events and this feed's status changes, serialised once, for every
    /// `/api/events` subscriber.
    pub(super) bus: broadcast::Sender<Utf8Bytes>,
    /// What is known of the others, and whether Redis is reachable.
    pub(super) state: Mutex<State>,
    /// Asks the publisher to say `hello` (the subscriber just (re)subscribed).
    pub(super) want_hello: Notify,
    /// Asks the publisher to publish this instance's open sessions (someone said `hello`).
    pub(super) want_snapshot: Notify,
    /// Asks the publisher to reconnect: the subscription was lost, so its connection to the
    /// same Redis is most likely dead too, and waiting for a send to fail would say `ok` early.
    pub(super) want_reconnect: Notify,
    /// What is kept of the others, at most.
    pub(super) limits: Limits,
    /// What was refused.
    pub(super) dropped: Dropped,
}

#[derive(Debug, Default)]
pub(super) struct State {
    /// Other instances' open sessions by (instance, id), oldest instance-id first, with their
    /// counts kept up to date.
    pub(super) remote: BTreeMap<(String, u64), (SessionOpened, SessionCounts)>,
    /// Each other instance: when it was last heard from, and how many of its sessions are kept.
    pub(super) heard: HashMap<String, Peer>,
    /// When a dropped message was last logged.
    pub(super) warned: Option<Instant>,
    /// Whether publishing works.
    pub(super) publishing: bool,
    /// Whether the subscription works.
    pub(super) subscribed: bool,
    /// The last reason Redis failed, for the `degraded` detail.
    pub(super) problem: Option<String>,
}

/// One other instance, as far as this one knows.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub(super) heard: Instant,
    pub(super) sessions: usize,
}

impl Cluster {
    pub(super) fn new(instance: &str, url: &str, capacity: usize, limits: Limits) -> Cluster {
        let (bus, _) = broadcast::channel(capacity.max(16));
        Cluster {
            instance: instance.to_owned(),
            // Never show a password (in the feed's `degraded` detail, in logs).
            url: redacted(url),
            bus,
            state: Mutex::new(State::default()),
            want_hello: Notify::new(),
            want_snapshot: Notify::new(),
            want_reconnect: Notify::new(),
            limits,
            dropped: Dropped::default(),
        }
    }

    /// For `/api/info`: what is kept of the others, and what was refused.
    pub fn info(&self) -> ClusterInfo {
        let state = self.lock();
        ClusterInfo {
            instances: state.heard.len(),
            remote_sessions: state.remote.len(),
            dropped_malformed: self.dropped.malformed.load(Ordering::Relaxed),
            dropped_oversized: self.dropped.oversized.load(Ordering::Relaxed),
            dropped_over_cap: self.dropped.over_cap.load(Ordering::Relaxed),
        }
    }

    /// Subscribes to the other instances' events and this feed's status changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Utf8Bytes> {
        self.bus.subscribe()
    }

    /// What a new subscriber gets after the local sessions: the feed's status, then a
    /// `session_opened` for every known session of the other instances.
    pub fn snapshot(&self) -> Vec<MonitorEvent> {
        let state = self.lock();
        let mut events = vec![MonitorEvent::Status(self.status(&state))];
        events.extend(state.remote.values().map(|(opened, counts)| {
            let mut opened = opened.clone();
            opened.set_counts(Some(*counts));
            MonitorEvent::SessionOpened(opened)
        }));
        events
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn status(&self, state: &State) -> FeedStatus {
        let (s, detail) = if state.publishing && state.subscribed {
            (
                "ok",
                format!("cluster monitor through Redis at {}", self.url),
            )
        } else {
            let why = state.problem.as_deref().unwrap_or("connecting");
            (
                "degraded",
                format!(
                    "Redis at {} unreachable ({why}): only this instance's sessions are shown; \
                     retrying",
                    self.url
                ),
            )
        };
        FeedStatus {
            state: s.to_owned(),
            detail,
            instance: Some(self.instance.clone()),
        }
    }

    pub(super) fn send(&self, event: &MonitorEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            // An error only means nobody listens right now.
            let _ = self.bus.send(Utf8Bytes::from(json));
        }
    }

    /// Records whether one direction works; announces a change of the overall state.
    pub(super) fn set_link(
        &self,
        publishing: Option<bool>,
        subscribed: Option<bool>,
        problem: Option<String>,
    ) {
        let mut state = self.lock();
        let before = state.publishing && state.subscribed;
        if let Some(p) = publishing {
            state.publishing = p;
        }
        if let Some(s) = subscribed {
            state.subscribed = s;
        }
        if problem.is_some() {
            state.problem = problem;
        }
        let after = state.publishing && state.subscribed;
        if before != after {
            let status = self.status(&state);
            if after {
                tracing::info!(url = %self.url, "cluster monitor: Redis reachable");
            } else {
                tracing::warn!(detail = %status.detail, "cluster monitor degraded");
            }
            self.send(&MonitorEvent::Status(status));
        }
    }

    /// Closes, on the feed, every known session of `instance` (every instance when `None`).
    pub(super) fn forget(&self, instance: Option<&str>, reason: &str) {
        let mut state = self.lock();
        let gone: Vec<(String, u64)> = state
            .remote
            .keys()
            .filter(|(i, _)| instance.is_none_or(|want| want == i))
            .cloned()
            .collect();
        for key in gone {
            if let Some((s, counts)) = state.remote.remove(&key) {
                // The counts as far as they were seen: the session may well go on.
                self.send(&MonitorEvent::SessionClosed(SessionClosed {
                    id: s.id,
                    kind: s.kind,
                    at: rfc3339_now(),
                    bytes_in: counts.bytes_in,
                    bytes_out: counts.bytes_out,
                    reason: reason.to_owned(),
                    instance: s.instance,
                }));
            }
        }
        match instance {
            Some(i) => drop(state.heard.remove(i)),
            None => state.heard.clear(),
        }
    }

    pub(super) fn control(&self, op: Op) -> String {
        serde_json::to_string(&Control {
            op,
            instance: self.instance.clone(),
        })
        .unwrap_or_default()
    }
}

/// `url` without its password, for the feed and the logs.
pub(super) fn redacted(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Waits before the next reconnection attempt, unless shutdown comes first (then `false`).
pub(super) async fn backoff(delay: &mut Duration, shutdown: &CancellationToken) -> bool {
    let wait = *delay;
    *delay = (*delay * 2).min(BACKOFF.1);
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = shutdown.cancelled() => false,
    }
}
