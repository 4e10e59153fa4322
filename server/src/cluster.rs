//! One monitor for several instances (`--monitor-redis redis://…`): every instance publishes its
//! own session events to Redis pub/sub and re-broadcasts everyone else's, so each instance's
//! `/api/events` shows the whole class, each event tagged with the instance that serves it.
//!
//! # How
//! * Channel [`EVENTS`]: the JSON of every local event, exactly as the local feed sends it (it
//!   carries `instance`). A publisher task reads the local bus like any feed subscriber, so the
//!   echo path never waits for Redis: when Redis is slow the publisher lags and loses events,
//!   the services do not notice. Events are sent in pipelined batches.
//! * Channel [`CONTROL`]: small JSON messages between instances — `hello` (I just subscribed:
//!   tell me your open sessions), `alive` (every [`HEARTBEAT`]), `bye` (I am stopping).
//! * The snapshot a new `/api/events` subscriber gets is the local sessions plus a map of
//!   remote open sessions kept from their `session_opened`/`session_closed` events, with their
//!   counts kept from their `message` events (starting from the counts a snapshot brought). An
//!   instance that joins late (or comes back after Redis was down) says `hello`, and every
//!   other instance answers by publishing a `session_opened` for each of its open sessions;
//!   ones already known are not passed on twice.
//! * Losing track is said, not hidden: when Redis is unreachable the feed gets `status
//!   degraded` and the remote sessions are closed on it (reason says why) — only local events
//!   flow; on recovery `status ok`, a `hello`, and the others' snapshots bring them back. An
//!   instance that says `bye`, or is not heard from for [`SILENCE`], has its sessions closed
//!   the same way.
//! * Anyone who can PUBLISH on the channels can send anything, so what is kept is bounded
//!   ([`Limits`]: remote sessions per instance and in total, instances, message size, field
//!   sizes); what is refused is counted ([`Dropped`], in `/api/info`) and logged at most every
//!   [`WARN_EVERY`]. Messages and closes of sessions not kept are not passed on.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use socklab_protocol::MonitorEvent;
use socklab_protocol::events::{
    ClusterInfo, FeedStatus, SessionClosed, SessionCounts, SessionOpened,
};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Notify, broadcast};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::rfc3339_now;
use crate::registry::Registry;

/// The pub/sub channel of session events.
pub const EVENTS: &str = "socklab:events";
/// The pub/sub channel of instance-to-instance messages.
pub const CONTROL: &str = "socklab:control";
/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// An instance not heard from for this long is taken for gone, its sessions closed.
pub const SILENCE: Duration = Duration::from_secs(15);
/// Connecting or answering, Redis gets this long before it counts as unreachable.
const REDIS_TIMEOUT: Duration = Duration::from_secs(2);
/// Reconnection delays grow from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(3));
/// Events sent to Redis in one round trip, at most.
const BATCH: usize = 256;
/// At shutdown, how long the publisher waits for local sessions to close (so their
/// `session_closed` events reach the others) before it says `bye`.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Dropped messages are logged at most this often (a flood must not flood the log).
pub const WARN_EVERY: Duration = Duration::from_secs(10);
/// Longest instance name taken from Redis (`--instance`, or host name and port).
const MAX_INSTANCE_NAME: usize = 128;
/// Longest address, time or tag in a remote `session_opened` (socklab's own are far shorter),
/// so each kept session costs a bounded amount of memory whatever `--monitor-redis-max-event`.
const MAX_FIELD: usize = 80;

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

/// Why a message was dropped.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Malformed,
    Oversized,
    OverCap,
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
struct Control {
    op: Op,
    instance: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Hello,
    Alive,
    Bye,
}

/// The cluster side of one instance's monitor.
#[derive(Debug)]
pub struct Cluster {
    /// This instance's name; its own events come back from Redis and are skipped.
    instance: String,
    /// Where Redis is, for the `degraded` message.
    url: String,
    /// Other instances' events and this feed's status changes, serialised once, for every
    /// `/api/events` subscriber.
    bus: broadcast::Sender<Utf8Bytes>,
    /// What is known of the others, and whether Redis is reachable.
    state: Mutex<State>,
    /// Asks the publisher to say `hello` (the subscriber just (re)subscribed).
    want_hello: Notify,
    /// Asks the publisher to publish this instance's open sessions (someone said `hello`).
    want_snapshot: Notify,
    /// Asks the publisher to reconnect: the subscription was lost, so its connection to the
    /// same Redis is most likely dead too, and waiting for a send to fail would say `ok` early.
    want_reconnect: Notify,
    /// What is kept of the others, at most.
    limits: Limits,
    /// What was refused.
    dropped: Dropped,
}

#[derive(Debug, Default)]
struct State {
    /// Other instances' open sessions by (instance, id), oldest instance-id first, with their
    /// counts kept up to date.
    remote: BTreeMap<(String, u64), (SessionOpened, SessionCounts)>,
    /// Each other instance: when it was last heard from, and how many of its sessions are kept.
    heard: HashMap<String, Peer>,
    /// When a dropped message was last logged.
    warned: Option<Instant>,
    /// Whether publishing works.
    publishing: bool,
    /// Whether the subscription works.
    subscribed: bool,
    /// The last reason Redis failed, for the `degraded` detail.
    problem: Option<String>,
}

/// One other instance, as far as this one knows.
#[derive(Debug, Clone, Copy)]
struct Peer {
    heard: Instant,
    sessions: usize,
}

impl Cluster {
    /// Starts the publisher and the subscriber for `registry`'s instance on `tracker`; they
    /// stop with `shutdown` (the publisher first passes on the closes of the local sessions
    /// and says `bye`).
    pub fn start(
        url: &str,
        registry: &Arc<Registry>,
        capacity: usize,
        limits: Limits,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster::new(
            registry.instance().unwrap_or("socklab"),
            url,
            capacity,
            limits,
        ));
        match redis::Client::open(url) {
            Ok(client) => {
                // Subscribe to the local bus now, so no event after start is missed.
                let local = registry.subscribe();
                tracker.spawn(publish(
                    Arc::clone(&cluster),
                    client.clone(),
                    Arc::clone(registry),
                    local,
                    shutdown.clone(),
                ));
                tracker.spawn(subscribe(Arc::clone(&cluster), client, shutdown.clone()));
            }
            Err(err) => {
                // clap checked the URL, so this is not expected; the feed says why it is local.
                tracing::error!(url = %cluster.url, cause = %err, "bad --monitor-redis URL: monitor stays local");
                cluster.lock().problem = Some(format!("bad Redis URL: {err}"));
            }
        }
        cluster
    }

    fn new(instance: &str, url: &str, capacity: usize, limits: Limits) -> Cluster {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn status(&self, state: &State) -> FeedStatus {
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

    fn send(&self, event: &MonitorEvent) {
        if let Ok(json) = serde_json::to_string(event) {
            // An error only means nobody listens right now.
            let _ = self.bus.send(Utf8Bytes::from(json));
        }
    }

    /// Records whether one direction works; announces a change of the overall state.
    fn set_link(
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
    fn forget(&self, instance: Option<&str>, reason: &str) {
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

    /// One message from Redis.
    fn received(&self, channel: &str, payload: &[u8]) {
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

    fn control(&self, op: Op) -> String {
        serde_json::to_string(&Control {
            op,
            instance: self.instance.clone(),
        })
        .unwrap_or_default()
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

/// `url` without its password, for the feed and the logs.
fn redacted(url: &str) -> String {
    match redis::parse_redis_url(url) {
        Some(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Waits before the next reconnection attempt, unless shutdown comes first (then `false`).
async fn backoff(delay: &mut Duration, shutdown: &CancellationToken) -> bool {
    let wait = *delay;
    *delay = (*delay * 2).min(BACKOFF.1);
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = shutdown.cancelled() => false,
    }
}

/// Local events → Redis, with `hello`, `alive`, snapshots and `bye`.
async fn publish(
    cluster: Arc<Cluster>,
    client: redis::Client,
    registry: Arc<Registry>,
    mut local: broadcast::Receiver<Utf8Bytes>,
    shutdown: CancellationToken,
) {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT));
    let mut delay = BACKOFF.0;
    'connect: loop {
        let mut conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(err) => {
                cluster.set_link(Some(false), None, Some(err.to_string()));
                if backoff(&mut delay, &shutdown).await {
                    continue;
                }
                return;
            }
        };
        // Events kept while Redis was away follow the snapshot (a slow start loses none; a
        // long outage loses the oldest, and the snapshot stands for them).
        let mut out = Outbox::default();
        out.snapshot(&registry);
        out.control(&cluster, Op::Alive);
        if let Err(err) = out.send(&mut conn).await {
            cluster.set_link(Some(false), None, Some(err.to_string()));
            if backoff(&mut delay, &shutdown).await {
                continue;
            }
            return;
        }
        // A reconnection asked for before this one is answered by it.
        let _ = cluster.want_reconnect.notified().now_or_never();
        cluster.set_link(Some(true), None, None);
        delay = BACKOFF.0;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            tokio::select! {
                event = local.recv() => match event {
                    Ok(json) => {
                        out.event(json);
                        while out.len() < BATCH {
                            match local.try_recv() {
                                Ok(json) => out.event(json),
                                Err(_) => break,
                            }
                        }
                    }
                    Err(RecvError::Lagged(skipped)) => {
                        tracing::debug!(skipped, "cluster monitor: Redis too slow, events dropped");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                },
                () = cluster.want_hello.notified() => {
                    out.control(&cluster, Op::Hello);
                    out.snapshot(&registry);
                }
                () = cluster.want_snapshot.notified() => out.snapshot(&registry),
                _ = heartbeat.tick() => out.control(&cluster, Op::Alive),
                () = cluster.want_reconnect.notified() => continue 'connect,
                () = shutdown.cancelled() => {
                    goodbye(&cluster, &registry, &mut local, &mut conn).await;
                    return;
                }
            }
            if let Err(err) = out.send(&mut conn).await {
                cluster.set_link(Some(false), None, Some(err.to_string()));
                if backoff(&mut delay, &shutdown).await {
                    continue 'connect;
                }
                return;
            }
        }
    }
}

/// At shutdown: passes on the closes of the local sessions (for a moment), then says `bye`.
async fn goodbye(
    cluster: &Cluster,
    registry: &Registry,
    local: &mut broadcast::Receiver<Utf8Bytes>,
    conn: &mut redis::aio::MultiplexedConnection,
) {
    let deadline = Instant::now() + CLOSE_WAIT;
    let mut out = Outbox::default();
    while !registry.is_empty() && Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, local.recv()).await {
            Ok(Ok(json)) => out.event(json),
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Err(RecvError::Closed)) | Err(_) => break,
        }
        if out.len() >= BATCH {
            let _ = out.send(conn).await;
        }
    }
    while let Ok(json) = local.try_recv() {
        out.event(json);
    }
    out.control(cluster, Op::Bye);
    if let Err(err) = out.send(conn).await {
        tracing::debug!(cause = %err, "cluster monitor: could not say bye");
    }
}

/// Messages waiting to go to Redis in one pipelined round trip.
#[derive(Default)]
struct Outbox {
    pipe: Option<redis::Pipeline>,
    len: usize,
}

impl Outbox {
    fn push(&mut self, channel: &str, payload: &str) {
        self.pipe
            .get_or_insert_with(redis::pipe)
            .publish(channel, payload)
            .ignore();
        self.len += 1;
    }

    fn event(&mut self, json: Utf8Bytes) {
        self.push(EVENTS, json.as_str());
    }

    fn control(&mut self, cluster: &Cluster, op: Op) {
        self.push(CONTROL, &cluster.control(op));
    }

    fn snapshot(&mut self, registry: &Registry) {
        for event in registry.opened_events() {
            if let Ok(json) = serde_json::to_string(&event) {
                self.push(EVENTS, &json);
            }
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    async fn send(
        &mut self,
        conn: &mut redis::aio::MultiplexedConnection,
    ) -> redis::RedisResult<()> {
        self.len = 0;
        match self.pipe.take() {
            Some(pipe) => pipe.exec_async(conn).await,
            None => Ok(()),
        }
    }
}

/// Redis → the cluster bus: other instances' events and control messages.
async fn subscribe(cluster: Arc<Cluster>, client: redis::Client, shutdown: CancellationToken) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use socklab_protocol::events::MessageEvent;
    use socklab_protocol::{Direction, SessionKind};

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
