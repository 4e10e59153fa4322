//! Waiting made cheap per message: a [`Gate`] polls what it guards (a socket, or a timer and
//! shutdown) only when that woke the task, and [`within`] arms a write's timeout only when
//! the write cannot finish at once ([`write_within`]: not even a future for a socket write
//! that can).
//!
//! Why: a session loop is woken once or twice per message by its sockets. Polling every
//! future it waits on at each wake-up re-registers each one's waker (a pending socket read
//! takes a lock, and a WebSocket's also clears a read buffer; a shutdown token's poll takes
//! two locks), and a timeout around each write reads the clock and builds a timer that is
//! dropped unused: together a sizeable part of a bridge's user-space CPU per message.

use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::error::Elapsed;

/// Futures polled with a waker of their own, which notes that one of them fired before
/// waking the task: a wake-up they did not cause polls none of them. They are polled again
/// after they were ready (what made them ready is consumed, so they must register again).
#[derive(Debug)]
pub struct Gate {
    flag: Arc<Flag>,
    /// Wakes `flag`'s task after setting `fired`.
    waker: Waker,
    /// The task waker last handed to `flag` (a task's waker does not change, so this is
    /// normally stored once).
    task: Option<Waker>,
    /// Poll at the next chance even if nothing fired: never polled yet, or ready last time.
    armed: bool,
}

#[derive(Debug, Default)]
struct Flag {
    fired: AtomicBool,
    /// The task to wake. Kept, not taken, by a wake-up (unlike an `AtomicWaker`), so the
    /// task registers it once; locked only then and when a guarded future fires.
    task: Mutex<Option<Waker>>,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = task.as_ref() {
            task.wake_by_ref();
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        let flag = Arc::new(Flag::default());
        Gate {
            waker: Waker::from(Arc::clone(&flag)),
            flag,
            task: None,
            armed: true,
        }
    }
}

impl Gate {
    /// Runs `poll` (which polls the guarded futures with the context it is given) when one of
    /// them woke the task or was ready last time (or this is the first poll); `Pending`
    /// otherwise. A future reset after it was ready (a timer moved) is thus polled again.
    #[inline(always)]
    pub fn poll<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        if !self.task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            let mut task = self
                .flag
                .task
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *task = Some(cx.waker().clone());
            self.task = Some(cx.waker().clone());
        }
        // A plain load first: the swap's locked instruction only when something fired.
        let fired = self.flag.fired.load(Ordering::Acquire)
            && self.flag.fired.swap(false, Ordering::AcqRel);
        if !(fired || std::mem::take(&mut self.armed)) {
            return Poll::Pending;
        }
        let polled = poll(&mut Context::from_waker(&self.waker));
        self.armed = polled.is_ready();
        polled
    }
}

/// `fut`, given at most `limit`. It is polled once first, and the timer armed only if it is
/// not done then: a write to a socket with room, the usual case, costs no timer at all.
pub async fn within<F: Future>(limit: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await;
    match first {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => tokio::time::timeout(limit, fut).await,
    }
}

/// Writes what `stream` takes of `data` now, never waiting: straight `send`s until all went or
/// the socket is full. Returns how many bytes went.
#[inline]
pub fn write_now(stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while let Some(rest) = data.get(written..).filter(|r| !r.is_empty()) {
        match stream.try_write(rest) {
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

/// Writes all of `data` to `stream`, given at most `limit`: [`write_now`] first (the usual
/// case: one `send`, no future, no timer, no waker registered), and only what the socket did
/// not take through [`within`] and `write_all`.
pub async fn write_within(
    stream: &mut TcpStream,
    data: &[u8],
    limit: Duration,
) -> Result<io::Result<()>, Elapsed> {
    match write_now(stream, data) {
        Ok(n) if n == data.len() => Ok(Ok(())),
        Ok(n) => within(limit, stream.write_all(data.get(n..).unwrap_or_default())).await,
        Err(err) => Ok(Err(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_timer_wakes_the_task_each_time_it_fires_and_is_polled_only_then() {
        let mut gate = Gate::default();
        let mut sleep = Box::pin(tokio::time::sleep(Duration::from_secs(5)));
        let mut polls = 0;
        for round in 1..=3 {
            std::future::poll_fn(|cx| {
                gate.poll(cx, |cx| {
                    polls += 1;
                    sleep.as_mut().poll(cx)
                })
            })
            .await;
            // Once to register, once when it fired.
            assert_eq!(polls, 2 * round);
            let next = sleep.deadline() + Duration::from_secs(5);
            sleep.as_mut().reset(next);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_socket_write_finishes_at_once_or_times_out_when_the_peer_does_not_read() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut writer = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut reader, _) = listener.accept().await.unwrap();
        let limit = Duration::from_secs(1);
        assert!(matches!(
            write_within(&mut writer, b"hi\n", limit).await,
            Ok(Ok(()))
        ));
        let mut got = [0u8; 3];
        tokio::io::AsyncReadExt::read_exact(&mut reader, &mut got)
            .await
            .unwrap();
        assert_eq!(&got, b"hi\n");
        // More than both sockets' buffers hold, to a peer that reads nothing more.
        let flood = vec![0u8; 64 << 20];
        assert!(write_within(&mut writer, &flood, limit).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_cannot_finish_times_out() {
        let pending = std::future::pending::<()>();
        assert!(within(Duration::from_secs(1), pending).await.is_err());
        assert_eq!(within(Duration::from_secs(1), async { 7 }).await, Ok(7));
    }
}
