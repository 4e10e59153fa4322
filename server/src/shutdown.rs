//! The process's shutdown trigger: Ctrl-C or SIGTERM, whichever comes first.

use std::future::Future;

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM on Unix).
///
/// On Unix the handlers are installed when this is called, not when the future is first
/// polled, so a signal that comes right after the server said it runs is a clean stop, not
/// death by signal. Call it inside the tokio runtime.
pub fn signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    let installed = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        {
            match installed {
                (Ok(mut int), Ok(mut term)) => tokio::select! {
                    _ = int.recv() => tracing::info!("Ctrl-C: shutting down"),
                    _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                },
                (Err(err), _) | (_, Err(err)) => {
                    tracing::error!(cause = %err, "cannot listen for Ctrl-C/SIGTERM");
                    std::future::pending::<()>().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            if let Err(err) = tokio::signal::ctrl_c().await {
                tracing::error!(cause = %err, "cannot listen for Ctrl-C");
                std::future::pending::<()>().await;
            }
            tracing::info!("Ctrl-C: shutting down");
        }
    }
}
