//! Local events → Redis: the publisher task, with `hello`, `alive`, snapshots and `bye`, in
//! pipelined batches ([`Outbox`]). It reads the local bus like any feed subscriber, so the
//! services never wait for Redis: when Redis is slow the publisher lags and loses events.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::FutureExt;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::hub::{BACKOFF, CONTROL, Cluster, EVENTS, HEARTBEAT, Op, REDIS_TIMEOUT, backoff};
use crate::registry::Registry;

/// Events sent to Redis in one round trip, at most.
const BATCH: usize = 256;
/// At shutdown, how long the publisher waits for local sessions to close (so their
/// `session_closed` events reach the others) before it says `bye`.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Local events → Redis, with `hello`, `alive`, snapshots and `bye`; after a failed send
/// it reconnects with a backoff, and at once when the subscriber lost Redis.
pub(super) async fn publish(
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
    loop {
        let ended = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(mut conn) => {
                let mut link = Link {
                    cluster: &cluster,
                    registry: &registry,
                    conn: &mut conn,
                };
                link.run(&mut local, &shutdown, &mut delay).await
            }
            Err(err) => Err(err),
        };
        match ended {
            Ok(Ended::Reconnect) => {}
            Ok(Ended::Stopped) => return,
            Err(err) => {
                cluster.set_link(Some(false), None, Some(err.to_string()));
                if !backoff(&mut delay, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Why a connection to Redis was left without an error.
enum Ended {
    /// The subscriber lost Redis: this connection is most likely dead too.
    Reconnect,
    /// Shutdown (after `bye`), or the local bus closed.
    Stopped,
}

/// One connection of the publisher to Redis.
struct Link<'a> {
    cluster: &'a Cluster,
    registry: &'a Registry,
    conn: &'a mut redis::aio::MultiplexedConnection,
}

impl Link<'_> {
    /// The snapshot and an `alive` first, then every local event and control message, until a
    /// send fails (the error), the subscriber asks for a reconnection, or shutdown.
    async fn run(
        &mut self,
        local: &mut broadcast::Receiver<Utf8Bytes>,
        shutdown: &CancellationToken,
        delay: &mut Duration,
    ) -> redis::RedisResult<Ended> {
        let cluster = self.cluster;
        // Events kept while Redis was away follow the snapshot (a slow start loses none; a
        // long outage loses the oldest, and the snapshot stands for them).
        let mut out = Outbox::default();
        out.snapshot(self.registry);
        out.control(cluster, Op::Alive);
        out.send(self.conn).await?;
        // A reconnection asked for before this one is answered by it.
        let _ = cluster.want_reconnect.notified().now_or_never();
        cluster.set_link(Some(true), None, None);
        *delay = BACKOFF.0;
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
                    Err(RecvError::Closed) => return Ok(Ended::Stopped),
                },
                () = cluster.want_hello.notified() => {
                    out.control(cluster, Op::Hello);
                    out.snapshot(self.registry);
                }
                () = cluster.want_snapshot.notified() => out.snapshot(self.registry),
                _ = heartbeat.tick() => out.control(cluster, Op::Alive),
                () = cluster.want_reconnect.notified() => return Ok(Ended::Reconnect),
                () = shutdown.cancelled() => {
                    goodbye(cluster, self.registry, local, self.conn).await;
                    return Ok(Ended::Stopped);
                }
            }
            out.send(self.conn).await?;
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
