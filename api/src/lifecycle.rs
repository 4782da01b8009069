//! Shutting down cleanly: on SIGTERM or SIGINT the server stops accepting, lets in-flight
//! requests finish (at most `STRATIX_SHUTDOWN_TIMEOUT`), closes WebSockets with 1001
//! (going away), and returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::watch;

/// The shutdown signal of one server, and the WebSockets still open (cheap to clone).
#[derive(Clone, Debug)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    begun: watch::Sender<bool>,
    sockets: AtomicUsize,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                begun: watch::Sender::new(false),
                sockets: AtomicUsize::new(0),
            }),
        }
    }
}

impl Shutdown {
    /// Starts the shutdown: `/ready` answers 503, WebSockets close, waiters wake.
    pub fn begin(&self) {
        self.inner.begun.send_replace(true);
    }

    /// Whether the shutdown has begun.
    pub fn has_begun(&self) -> bool {
        *self.inner.begun.borrow()
    }

    /// Resolves once the shutdown has begun.
    pub fn begun(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut begun = self.inner.begun.subscribe();
        async move {
            let _ = begun.wait_for(|begun| *begun).await;
        }
    }

    /// Counts an open WebSocket until the guard is dropped.
    pub fn socket(&self) -> SocketGuard {
        self.inner.sockets.fetch_add(1, Ordering::Relaxed);
        SocketGuard {
            shutdown: self.clone(),
        }
    }

    /// How many WebSockets are open.
    pub fn websockets(&self) -> usize {
        self.inner.sockets.load(Ordering::Relaxed)
    }

    /// Waits until every WebSocket has closed, at most `wait`; whether they all did.
    pub async fn sockets_closed(&self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while self.websockets() > 0 {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

/// An open WebSocket, counted by [`Shutdown::websockets`].
#[derive(Debug)]
pub struct SocketGuard {
    shutdown: Shutdown,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.shutdown.inner.sockets.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Resolves at the first SIGTERM or SIGINT (Ctrl-C); returns the signal's name.
pub async fn signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            },
            _ => {
                let _ = tokio::signal::ctrl_c().await;
                "SIGINT"
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "Ctrl-C"
    }
}
