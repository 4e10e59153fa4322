//! One monitor for several instances (`--monitor-redis redis://…`): every instance publishes its
//! own session events to Redis pub/sub and re-broadcasts everyone else's, so each instance's
//! `/api/events` shows the whole class, each event tagged with the instance that serves it.
//!
//! # How
//! * Channel `EVENTS`: the JSON of every local event, exactly as the local feed sends it (it
//!   carries `instance`). A publisher task reads the local bus like any feed subscriber, so the
//!   echo path never waits for Redis: when Redis is slow the publisher lags and loses events,
//!   the services do not notice. Events are sent in pipelined batches.
//! * Channel `CONTROL`: small JSON messages between instances — `hello` (I just subscribed:
//!   tell me your open sessions), `alive` (every `HEARTBEAT`), `bye` (I am stopping).
//! * The snapshot a new `/api/events` subscriber gets is the local sessions plus a map of
//!   remote open sessions kept from their `session_opened`/`session_closed` events, with their
//!   counts kept from their `message` events (starting from the counts a snapshot brought). An
//!   instance that joins late (or comes back after Redis was down) says `hello`, and every
//!   other instance answers by publishing a `session_opened` for each of its open sessions;
//!   ones already known are not passed on twice.
//! * Losing track is said, not hidden: when Redis is unreachable the feed gets `status
//!   degraded` and the remote sessions are closed on it (reason says why) — only local events
//!   flow; on recovery `status ok`, a `hello`, and the others' snapshots bring them back. An
//!   instance that says `bye`, or is not heard from for `SILENCE`, has its sessions closed
//!   the same way.
//! * Anyone who can PUBLISH on the channels can send anything, so what is kept is bounded
//!   ([`Limits`]: remote sessions per instance and in total, instances, message size, field
//!   sizes); what is refused is counted (`Dropped`, in `/api/info`) and logged at most every
//!   `WARN_EVERY`. Messages and closes of sessions not kept are not passed on.
//!
//! Files: `hub.rs` the running [`Cluster`] (what is known, the bus, the status), `feed.rs`
//! Redis → the bus (the subscriber; events applied within the caps), `outbox.rs` the local
//! bus → Redis (the publisher).

mod feed;
mod hub;
mod outbox;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use hub::{Cluster, Limits, default_instance};

use crate::registry::Registry;

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
                tracker.spawn(outbox::publish(
                    Arc::clone(&cluster),
                    client.clone(),
                    Arc::clone(registry),
                    local,
                    shutdown.clone(),
                ));
                tracker.spawn(feed::subscribe(
                    Arc::clone(&cluster),
                    client,
                    shutdown.clone(),
                ));
            }
            Err(err) => {
                // clap checked the URL, so this is not expected; the feed says why it is local.
                tracing::error!(url = %cluster.url, cause = %err, "bad --monitor-redis URL: monitor stays local");
                cluster.lock().problem = Some(format!("bad Redis URL: {err}"));
            }
        }
        cluster
    }
}
