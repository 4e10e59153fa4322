//! `--threads N`: the server runs on N single-threaded tokio runtimes. The first is the one
//! the server was started on (the binary's `main`, a test's); this module starts the other
//! N − 1, each on its own OS thread, and ends them.
//!
//! Why not one multi-threaded runtime: its workers steal each other's tasks and wake each
//! other up, so the two halves of one bridged session (the browser's WebSocket, the upstream
//! connection) ran on different threads, message by message. Here a session never leaves the
//! runtime that accepted it (see `lib.rs`, which gives each runtime its own listeners), and
//! the runtimes share only the server's handles (registry, limit, shutdown, tracker).

use std::io;
use std::thread;
use std::time::Duration;

use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::state::set_runtime_index;

/// How long a runtime's last tasks get once it is told to end (sessions past the shutdown
/// grace period): then they are dropped, closing their sockets.
const END_TIMEOUT: Duration = Duration::from_secs(1);

/// The runtimes beside the first: started by `bind`, ended by `RunningServer::stop`, or when
/// the runtime the server was started on goes away, or when they were never used.
#[derive(Debug)]
pub(crate) struct Runtimes {
    /// Runtime `i + 1`'s handle.
    handles: Vec<Handle>,
    /// Cancelled to end them all.
    end: CancellationToken,
    /// Each runtime's thread says here that it ended.
    ended: Vec<oneshot::Receiver<()>>,
    /// Whether the server took them over (`adopt`); until then dropping this ends them.
    adopted: bool,
}

impl Runtimes {
    /// Starts `extra` current-thread runtimes (numbered 1 to `extra`), each on its own thread.
    pub(crate) fn start(extra: usize) -> io::Result<Runtimes> {
        let mut runtimes = Runtimes {
            handles: Vec::with_capacity(extra),
            end: CancellationToken::new(),
            ended: Vec::with_capacity(extra),
            adopted: false,
        };
        for index in 1..=extra {
            let runtime = Builder::new_current_thread().enable_all().build()?;
            runtimes.handles.push(runtime.handle().clone());
            let (done, ended) = oneshot::channel();
            let end = runtimes.end.clone();
            thread::Builder::new()
                .name(format!("socklab-rt-{index}"))
                .spawn(move || {
                    set_runtime_index(index);
                    runtime.block_on(end.cancelled());
                    runtime.shutdown_timeout(END_TIMEOUT);
                    let _ = done.send(());
                })?;
            runtimes.ended.push(ended);
        }
        Ok(runtimes)
    }

    /// Runtime `index`'s handle: 0 is the current one (the server's first runtime).
    pub(crate) fn handle(&self, index: usize) -> Handle {
        match index.checked_sub(1).and_then(|i| self.handles.get(i)) {
            Some(handle) => handle.clone(),
            None => Handle::current(),
        }
    }

    /// The server takes the runtimes over: they now live until [`Runtimes::end`], or until
    /// the current runtime (the server's first) is dropped, as its own tasks would.
    pub(crate) fn adopt(&mut self) {
        self.adopted = true;
        let guard = self.end.clone().drop_guard();
        let end = self.end.clone();
        tokio::spawn(async move {
            let _guard = guard;
            end.cancelled().await;
        });
    }

    /// Ends every runtime and waits (a bounded time) for their threads to finish: what still
    /// runs there is dropped.
    pub(crate) async fn end(mut self) {
        self.end.cancel();
        for ended in std::mem::take(&mut self.ended) {
            let _ = tokio::time::timeout(END_TIMEOUT * 2, ended).await;
        }
    }
}

impl Drop for Runtimes {
    fn drop(&mut self) {
        if !self.adopted {
            self.end.cancel();
        }
    }
}
