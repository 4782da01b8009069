//! Closing a socket without losing events: when a connection must close (the server shuts
//! down, the token expires) its subscriptions stop taking events, the events already
//! taken are sent, and then each subscription gets one last message with the cursor to
//! resume from: a `next` whose payload is
//! `{"data": null, "extensions": {"resumeAfter": "<cursor>", "reason": "..."}}`.
//! Resubscribing with `after:` that cursor (on any instance) replays what came since.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::watch;

/// The `extensions` key of a `subscribe` payload that carries the operation's id from the
/// socket to its executor (set by the socket, removed before anything runs).
pub(super) const OPERATION_ID: &str = "stratix.operationId";

/// Why a connection closes, as the last message of each subscription says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The server shuts down (then closes with 1001).
    ServerShutdown,
    /// The connection's token expired (then closes with 4403).
    TokenExpired,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Self::ServerShutdown => "SERVER_SHUTDOWN",
            Self::TokenExpired => "TOKEN_EXPIRED",
        }
    }
}

/// How far one subscription has got: the cursor of the last event it took from its feed
/// (or, before any, the feed's starting point). Every event up to it was handed on.
#[derive(Debug)]
pub struct Position(AtomicI64);

const UNSET: i64 = i64::MIN;

impl Default for Position {
    fn default() -> Self {
        Self(AtomicI64::new(UNSET))
    }
}

impl Position {
    /// The subscription has got to `cursor`.
    pub fn set(&self, cursor: i64) {
        self.0.store(cursor, Ordering::Release);
    }

    /// The cursor to resume after, once the subscription has started.
    pub fn get(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Acquire)).filter(|c| *c != UNSET)
    }
}

/// A connection's signal to its subscriptions that it is closing: they end after the event
/// they are on. In the connection's data; a feed without it never ends this way.
#[derive(Clone, Debug)]
pub struct Closing(watch::Receiver<bool>);

impl Closing {
    /// A new signal and its sender.
    pub(super) fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    /// Resolves once the connection is closing.
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.0.clone();
        async move {
            let _ = rx.wait_for(|closing| *closing).await;
        }
    }
}

/// The last message of subscription `id`: the cursor to resume after, and why.
pub(super) fn last_message(legacy: bool, id: &str, cursor: i64, reason: Reason) -> String {
    serde_json::json!({
        "type": if legacy { "data" } else { "next" },
        "id": id,
        "payload": {
            "data": null,
            "extensions": { "resumeAfter": cursor.to_string(), "reason": reason.as_str() },
        },
    })
    .to_string()
}

/// Subscriptions' positions by operation id, shared by a socket and its executor.
pub(super) type Positions = Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<Position>>>>;
