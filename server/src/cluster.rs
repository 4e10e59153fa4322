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

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::{FutureExt, StreamExt};
use serde::{Deserialize, Serialize};
use socklab_protocol::MonitorEvent;
use socklab_protocol::events::{FeedStatus, SessionClosed, SessionCounts, SessionOpened};
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

/// `--monitor-redis`'s value check (clap): a URL the redis crate accepts.
pub fn parse_url(s: &str) -> Result<String, String> {
    match redis::Client::open(s) {
        Ok(_) => Ok(s.to_owned()),
        Err(err) => Err(format!(
            "not a Redis URL (like redis://127.0.0.1:6379/): {err}"
        )),
    }
}

/// The instance name when `--monitor-redis` is given without `--instance`: the host name and
/// the first HTTP port, unique on one network.
pub fn default_instance(addrs: &crate::Addrs) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "socklab".to_owned());
    match addrs.http.first() {
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
}

#[derive(Debug, Default)]
struct State {
    /// Other instances' open sessions by (instance, id), oldest instance-id first, with their
    /// counts kept up to date.
    remote: BTreeMap<(String, u64), (SessionOpened, SessionCounts)>,
    /// When each other instance was last heard from.
    heard: HashMap<String, Instant>,
    /// Whether publishing works.
    publishing: bool,
    /// Whether the subscription works.
    subscribed: bool,
    /// The last reason Redis failed, for the `degraded` detail.
    problem: Option<String>,
}

impl Cluster {
    /// Starts the publisher and the subscriber for `registry`'s instance on `tracker`; they
    /// stop with `shutdown` (the publisher first passes on the closes of the local sessions
    /// and says `bye`).
    pub fn start(
        url: &str,
        registry: &Arc<Registry>,
        capacity: usize,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Arc<Cluster> {
        let (bus, _) = broadcast::channel(capacity.max(16));
        let cluster = Arc::new(Cluster {
            instance: registry.instance().unwrap_or("socklab").to_owned(),
            url: url.to_owned(),
            bus,
            state: Mutex::new(State::default()),
            want_hello: Notify::new(),
            want_snapshot: Notify::new(),
            want_reconnect: Notify::new(),
        });
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
                tracing::error!(url, cause = %err, "bad --monitor-redis URL: monitor stays local");
                cluster.lock().problem = Some(format!("bad Redis URL: {err}"));
            }
        }
        cluster
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
        if channel == CONTROL {
            let Ok(msg) = serde_json::from_slice::<Control>(payload) else {
                return;
            };
            if msg.instance == self.instance {
                return;
            }
            match msg.op {
                Op::Hello => {
                    self.heard(&msg.instance);
                    self.want_snapshot.notify_one();
                }
                Op::Alive => self.heard(&msg.instance),
                Op::Bye => {
                    let reason = format!("instance {} stopped", msg.instance);
                    self.forget(Some(&msg.instance), &reason);
                }
            }
            return;
        }
        let Ok(json) = std::str::from_utf8(payload) else {
            return;
        };
        let Ok(event) = serde_json::from_str::<MonitorEvent>(json) else {
            tracing::debug!("cluster monitor: ignoring a message that is not an event");
            return;
        };
        let instance = match &event {
            MonitorEvent::SessionOpened(e) => e.instance.as_deref(),
            MonitorEvent::Message(e) => e.instance.as_deref(),
            MonitorEvent::SessionClosed(e) => e.instance.as_deref(),
            MonitorEvent::Lagged { .. } | MonitorEvent::Status(_) => return,
        };
        let Some(instance) = instance.filter(|i| *i != self.instance) else {
            return;
        };
        self.heard(instance);
        {
            let mut state = self.lock();
            match &event {
                MonitorEvent::SessionOpened(e) => {
                    let key = (instance.to_owned(), e.id);
                    if state.remote.contains_key(&key) {
                        // Already known (a snapshot answering someone's hello).
                        return;
                    }
                    let counts = e.counts().unwrap_or_default();
                    state.remote.insert(key, (e.clone(), counts));
                }
                MonitorEvent::Message(m) => {
                    if let Some((_, counts)) = state.remote.get_mut(&(instance.to_owned(), m.id)) {
                        counts.count(m.dir, m.bytes, m.seq);
                    }
                }
                MonitorEvent::SessionClosed(e) => {
                    state.remote.remove(&(instance.to_owned(), e.id));
                }
                _ => {}
            }
        }
        let _ = self.bus.send(Utf8Bytes::from(json));
    }

    /// Notes that `instance` spoke. One not heard from before (new, or back after Redis or it
    /// was away) may have published its sessions before this instance subscribed, and may
    /// not have heard this instance's `hello`: ask again, so both sides get each other's.
    fn heard(&self, instance: &str) {
        let new = self
            .lock()
            .heard
            .insert(instance.to_owned(), Instant::now())
            .is_none();
        if new {
            self.want_hello.notify_one();
        }
    }

    /// Closes the sessions of instances not heard from for [`SILENCE`].
    fn expire(&self) {
        let silent: Vec<String> = self
            .lock()
            .heard
            .iter()
            .filter(|(_, at)| at.elapsed() > SILENCE)
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

    fn cluster() -> Arc<Cluster> {
        let (bus, _) = broadcast::channel(64);
        Arc::new(Cluster {
            instance: "a".into(),
            url: "redis://127.0.0.1:1/".into(),
            bus,
            state: Mutex::new(State::default()),
            want_hello: Notify::new(),
            want_snapshot: Notify::new(),
            want_reconnect: Notify::new(),
        })
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
    fn urls_are_checked() {
        assert!(parse_url("redis://127.0.0.1:6379/").is_ok());
        assert!(parse_url("http://nope").is_err());
    }
}
