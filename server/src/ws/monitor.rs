//! The monitor feed `/api/events`: every session of every kind, live, as JSON text frames.
//! A new subscriber first gets a `session_opened` for every session already open, then the
//! live events. A subscriber that falls behind loses events (and is told so with `lagged`);
//! it never slows the services. Like `/ws`, the feed holds a `--max-connections` slot, so a
//! subscriber that stops answering pings, or stops reading for `--write-timeout` (the
//! snapshot included), is dropped.
//! `?packets=1` adds the `packet` events of `--capture`. `?batch=N` makes each text frame a
//! JSON array of up to N events: the one that woke the feed and those already waiting behind
//! it (and never more bytes than half the feed's write buffer, so a frame can always be
//! sent). Nothing waits to fill a frame, so a quiet feed still sends each event as it
//! happens, while a burst of thousands goes out (and is received) as a few frames.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use socklab_protocol::{MonitorEvent, close_code};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use crate::http::access::Admitted;
use crate::state::Shared;
use crate::ws::liveness::{Beat, Liveness, ping};
use crate::ws::socket::{answer_close, close, tune, write_buffer};

/// The most events a subscriber may ask for in one frame (`?batch=`).
pub const MAX_BATCH: usize = 1024;

/// The query of `/api/events`.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct FeedQuery {
    /// `1` (or `true`): also send `packet` events (when capture is on).
    #[serde(default)]
    packets: Option<String>,
    /// `N`: frames are JSON arrays of up to N events (1 to [`MAX_BATCH`]).
    #[serde(default)]
    batch: Option<String>,
}

impl FeedQuery {
    /// The most events per frame, if the subscriber asked for arrays; why not, for a value
    /// that is not a whole number from 1 to [`MAX_BATCH`].
    fn batch(&self) -> Result<Option<usize>, String> {
        let Some(text) = &self.batch else {
            return Ok(None);
        };
        match text.parse::<usize>() {
            Ok(n) if (1..=MAX_BATCH).contains(&n) => Ok(Some(n)),
            _ => {
                let shown: String = text.chars().take(32).collect();
                Err(format!(
                    "`batch` must be a whole number from 1 to {MAX_BATCH} (events per frame), not {shown:?}"
                ))
            }
        }
    }
}

/// How a `?batch=` subscriber's frames are cut.
#[derive(Debug, Clone, Copy)]
struct Batch {
    /// The most events in one frame: the subscriber's `N`.
    events: usize,
    /// The most bytes in one frame (one event alone may be more): half the feed's write
    /// buffer, which a frame must fit.
    bytes: usize,
}

/// `GET /api/events` (Origin rule and connection slot: [`Admitted`]).
pub(crate) async fn handler(
    ws: WebSocketUpgrade,
    Query(query): Query<FeedQuery>,
    State(shared): State<Arc<Shared>>,
    Admitted { permit }: Admitted<false>,
) -> Response {
    let batch = match query.batch() {
        Ok(events) => events.map(|events| Batch {
            events,
            bytes: write_buffer(&shared) / 2,
        }),
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let tracked = shared.tracker.token();
    // Subscribed before the `101` goes out: a client that saw the feed open, then acted (sent
    // a line, opened a session), is sure to hear of it.
    let buses = Buses::subscribe(
        &shared,
        matches!(query.packets.as_deref(), Some("1" | "true")),
    );
    tune(ws, &shared).on_upgrade(move |socket| async move {
        feed(socket, shared, buses, batch).await;
        drop(permit);
        drop(tracked);
    })
}

/// The buses a subscriber hears: the registry's events, `--capture`'s packets (if asked for),
/// and with `--monitor-redis` the other instances' sessions.
struct Buses {
    events: broadcast::Receiver<Utf8Bytes>,
    packets: Option<broadcast::Receiver<Utf8Bytes>>,
    remote: Option<broadcast::Receiver<Utf8Bytes>>,
}

impl Buses {
    /// Subscribes to each before the snapshot is taken: an event can then be seen twice,
    /// never missed.
    fn subscribe(shared: &Shared, packets: bool) -> Self {
        Self {
            events: shared.registry.subscribe(),
            packets: shared
                .capture
                .as_ref()
                .filter(|_| packets)
                .map(|c| c.subscribe()),
            remote: shared.cluster.as_ref().map(|c| c.subscribe()),
        }
    }
}

/// Sends the snapshot, then each event as it comes (with `batch`, with those waiting behind
/// it), until the subscriber leaves, stops cooperating, or the server shuts down.
async fn feed(mut socket: WebSocket, shared: Arc<Shared>, buses: Buses, batch: Option<Batch>) {
    let Buses {
        mut events,
        mut packets,
        mut remote,
    } = buses;
    let _counted = shared.registry.metrics().subscriber();
    let write_timeout = shared.config.write_timeout();
    if !send_snapshot(&mut socket, &shared, write_timeout, batch).await {
        return;
    }
    let mut liveness = Liveness::new(shared.config.ping_interval());
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            Some(event) = recv_remote(&mut remote) => event,
            Some(event) = recv_remote(&mut packets) => event,
            msg = socket.recv() => match msg {
                // The feed is one-way; whatever the client sends is ignored, but it must be
                // read so pings are answered, pongs heard and a close seen.
                Some(Ok(Message::Close(_))) => {
                    answer_close(&mut socket).await;
                    return;
                }
                Some(Err(_)) | None => return,
                Some(Ok(_)) => {
                    liveness.heard();
                    continue;
                }
            },
            beat = liveness.due() => {
                // Silent for two ping intervals, or not even taking a ping: its slot is freed.
                if beat == Beat::Silent || !ping(&mut socket, write_timeout).await {
                    return;
                }
                continue;
            }
            () = shared.shutdown.cancelled() => {
                close(&mut socket, close_code::GOING_AWAY, "server shutting down").await;
                return;
            }
        };
        let json = match event {
            Ok(json) => json,
            Err(RecvError::Lagged(skipped)) => match lagged(&shared, skipped) {
                Some(json) => json,
                None => continue,
            },
            Err(RecvError::Closed) => break,
        };
        let frames = match batch {
            Some(batch) => {
                let mut buses = [Some(&mut events), remote.as_mut(), packets.as_mut()];
                cut(with_waiting(json, batch.events, &mut buses, &shared), batch)
            }
            None => vec![json],
        };
        if !send_all(&mut socket, frames, write_timeout).await {
            return;
        }
    }
}

/// Sends `frames`, each write bounded by `--write-timeout`; `false` when the subscriber is
/// gone or stopped reading.
async fn send_all(socket: &mut WebSocket, frames: Vec<Utf8Bytes>, write_timeout: Duration) -> bool {
    for frame in frames {
        let fed = tokio::time::timeout(write_timeout, socket.feed(Message::Text(frame))).await;
        if !matches!(fed, Ok(Ok(()))) {
            return false;
        }
    }
    matches!(
        tokio::time::timeout(write_timeout, socket.flush()).await,
        Ok(Ok(()))
    )
}

/// The `lagged` event for `skipped` events a subscriber missed, which are counted.
fn lagged(shared: &Shared, skipped: u64) -> Option<Utf8Bytes> {
    shared.registry.metrics().events_dropped(skipped);
    to_json(&MonitorEvent::Lagged { skipped })
}

/// `first` and the events already waiting on `buses`, at most `max` in all. The buses take
/// turns, one event each while any has one: each keeps its order, and none waits behind
/// another's burst. It never waits for more.
fn with_waiting(
    first: Utf8Bytes,
    max: usize,
    buses: &mut [Option<&mut broadcast::Receiver<Utf8Bytes>>],
    shared: &Shared,
) -> Vec<Utf8Bytes> {
    let mut jsons = vec![first];
    let mut more = true;
    while more && jsons.len() < max {
        more = false;
        for bus in buses.iter_mut().flatten() {
            if jsons.len() == max {
                break;
            }
            match bus.try_recv() {
                Ok(json) => jsons.push(json),
                Err(TryRecvError::Lagged(skipped)) => jsons.extend(lagged(shared, skipped)),
                Err(TryRecvError::Empty | TryRecvError::Closed) => continue,
            }
            more = true;
        }
    }
    jsons
}

/// Events' JSON texts as JSON arrays of at most `batch.events` events and `batch.bytes`
/// bytes (an event larger than that goes alone), in order.
fn cut(jsons: Vec<Utf8Bytes>, batch: Batch) -> Vec<Utf8Bytes> {
    let mut frames = Vec::new();
    let (mut frame, mut n) = (String::new(), 0);
    for json in jsons {
        // The comma (or `[`) and the closing `]` come with it.
        let full = n == batch.events || frame.len() + json.len() + 2 > batch.bytes;
        if n > 0 && full {
            frame.push(']');
            frames.push(Utf8Bytes::from(std::mem::take(&mut frame)));
            n = 0;
        }
        frame.push(if n == 0 { '[' } else { ',' });
        frame.push_str(json.as_str());
        n += 1;
    }
    if n > 0 {
        frame.push(']');
        frames.push(Utf8Bytes::from(frame));
    }
    frames
}

/// Sends a `session_opened` for every open session (the cluster's too; with `batch`, in
/// arrays), each write bounded by `--write-timeout`: a subscriber that stops reading during
/// a large snapshot is dropped like one that stops reading live events. `false` when the
/// subscriber is gone.
async fn send_snapshot(
    socket: &mut WebSocket,
    shared: &Shared,
    write_timeout: Duration,
    batch: Option<Batch>,
) -> bool {
    let mut snapshot = shared.registry.opened_events();
    if let Some(cluster) = &shared.cluster {
        snapshot.extend(cluster.snapshot());
    }
    let jsons: Vec<Utf8Bytes> = snapshot.iter().filter_map(to_json).collect();
    let frames = match batch {
        Some(batch) => cut(jsons, batch),
        None => jsons,
    };
    send_all(socket, frames, write_timeout).await
}

/// The next event of an optional bus (the cluster's, the packets'); never, without one.
async fn recv_remote(
    remote: &mut Option<broadcast::Receiver<Utf8Bytes>>,
) -> Option<Result<Utf8Bytes, RecvError>> {
    match remote {
        Some(rx) => Some(rx.recv().await),
        None => std::future::pending().await,
    }
}

fn to_json(event: &MonitorEvent) -> Option<Utf8Bytes> {
    serde_json::to_string(event).ok().map(Utf8Bytes::from)
}
