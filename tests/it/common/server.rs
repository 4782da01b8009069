//! The production router on a real port, and a GraphQL WebSocket client to subscribe to it
//! (the one place the tests use a real port).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use api::realtime::{Broker, Write};
use futures_util::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::TestDb;
use super::app::{PAYMENTS_SECRET, SECRET, SHOPIFY_KEY, SHOPIFY_SECRET};

/// The keys that check test tokens: `SECRET` (no JWKS), the Shopify test app's, and the
/// payment provider's webhook secret.
pub fn keys() -> api::auth::Keys {
    api::auth::Keys {
        user: api::auth::jwt::UserKeys {
            secret: SECRET.to_vec(),
            jwks: None,
        },
        shopify: api::auth::shopify::ShopifyKeys {
            api_key: SHOPIFY_KEY.to_owned(),
            api_secret: SHOPIFY_SECRET.to_vec(),
        },
        payments_webhook: PAYMENTS_SECRET.to_vec(),
        encryption: super::app::encryption(),
    }
}

/// The production router on a real port.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its realtime broker.
    pub broker: Broker,
    /// Its open WebSocket operations per principal.
    pub operations: api::realtime::socket::OpenOperations,
    /// Its shops' usage logs, not yet written.
    pub usage_logs: api::domains::shopify::usage::UsageLogs,
    router: axum::Router,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Builds the production state over `db` and serves its router on a free local port.
    pub async fn start(db: DatabaseConnection) -> Self {
        Self::start_with(db, super::options()).await
    }

    /// [`Server::start`] with these options (limits, switches).
    pub async fn start_with(db: DatabaseConnection, options: api::state::Options) -> Self {
        let state = api::build_state_with(db, keys(), options).unwrap();
        let broker = state.realtime.clone();
        let operations = state.operations.clone();
        let usage_logs = state.usage_logs.clone();
        let router = api::router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = router.clone();
        let task = tokio::spawn(async move {
            let app = app.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            addr,
            broker,
            operations,
            usage_logs,
            router,
            task,
        }
    }

    /// Waits until `n` subscriptions are registered (a subscribe message is processed
    /// asynchronously; a change made before that would not be for it).
    pub async fn subscribed(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.broker.subscriptions() < n {
            assert!(
                Instant::now() < deadline,
                "{} of {n} subscriptions",
                self.broker.subscriptions()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// POSTs a GraphQL operation with a bearer token; returns the body.
    pub async fn post(&self, token: &str, query: &str) -> Value {
        self.graphql(Some(token), query, json!({})).await
    }

    /// POSTs a GraphQL operation with variables and an optional bearer token; returns
    /// the body.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request =
            axum::http::Request::post("/graphql").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(request.body(axum::body::Body::from(body)).unwrap())
            .await
            .1
    }

    /// Sends one HTTP request to the server's router; returns the status and JSON body.
    pub async fn send(&self, request: axum::http::Request<axum::body::Body>) -> (u16, Value) {
        use tower::ServiceExt as _;
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// What a mutation does after its write on SQLite (PostgreSQL's triggers publish).
    pub fn publish(&self, t: &TestDb, writes: impl IntoIterator<Item = Write>) {
        if !t.is_postgres() {
            self.broker.publish(writes);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a GraphQL WebSocket client receives.
#[derive(Debug)]
pub enum Incoming {
    /// A protocol message.
    Json(Value),
    /// The close frame's code and reason.
    Closed(u16, String),
}

/// A GraphQL WebSocket client: `graphql-transport-ws`, or the legacy `graphql-ws`.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    legacy: bool,
    /// Event payloads received so far, per subscription id.
    pub events: HashMap<String, Vec<Value>>,
    /// Subscription ids the server completed.
    completed: HashSet<String>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, legacy: bool) -> Self {
        let mut request = format!("ws://{addr}/graphql")
            .into_client_request()
            .unwrap();
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        let (ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(
            response.headers()["sec-websocket-protocol"]
                .to_str()
                .unwrap(),
            protocol
        );
        Self {
            ws,
            legacy,
            events: HashMap::new(),
            completed: HashSet::new(),
        }
    }

    pub async fn send(&mut self, message: Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// Sends a frame as is (binary, malformed, oversized).
    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    pub async fn recv(&mut self, wait: Duration) -> Option<Incoming> {
        loop {
            let message = tokio::time::timeout(wait, self.ws.next()).await.ok()??;
            match message {
                Ok(Message::Text(text)) => {
                    return Some(Incoming::Json(serde_json::from_str(&text).unwrap()));
                }
                Ok(Message::Close(frame)) => {
                    return Some(match frame {
                        Some(frame) => {
                            Incoming::Closed(frame.code.into(), frame.reason.to_string())
                        }
                        None => Incoming::Closed(1005, String::new()),
                    });
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Sends `connection_init` with `payload` and returns the answer.
    pub async fn init_with(&mut self, payload: Value) -> Incoming {
        self.send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        self.recv(Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("no answer to connection_init"))
    }

    /// The next frame as it came (pings, pongs and close frames included), if any within
    /// `wait`.
    pub async fn frame(&mut self, wait: Duration) -> Option<Message> {
        tokio::time::timeout(wait, self.ws.next()).await.ok()??.ok()
    }

    /// Initialises the connection with a bearer token.
    pub async fn init(&mut self, token: &str) {
        match self
            .init_with(json!({ "Authorization": format!("Bearer {token}") }))
            .await
        {
            Incoming::Json(ack) if ack["type"] == "connection_ack" => {}
            other => panic!("connection_init refused: {other:?}"),
        }
    }

    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({
            "type": kind,
            "id": id,
            "payload": { "query": query, "variables": variables },
        }))
        .await;
    }

    /// Reads messages (keeping every event) until an event of `id` satisfies `done`;
    /// returns that event's payload.
    pub async fn until(
        &mut self,
        id: &str,
        wait: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some(Incoming::Json(message)) => {
                    let kind = message["type"].as_str().unwrap_or_default();
                    let of = message["id"].as_str().unwrap_or_default().to_owned();
                    match kind {
                        "next" | "data" => {
                            let payload = message["payload"].clone();
                            self.events
                                .entry(of.clone())
                                .or_default()
                                .push(payload.clone());
                            if of == id && done(&payload) {
                                return payload;
                            }
                        }
                        "complete" => {
                            self.completed.insert(of);
                        }
                        "error" => panic!("subscription error: {message}"),
                        _ => {}
                    }
                }
                Some(Incoming::Closed(code, reason)) => panic!("closed {code} {reason}"),
                None => panic!(
                    "no matching event for {id} within {wait:?}; received {:?}",
                    self.events.get(id)
                ),
            }
        }
    }

    /// An event of `id` satisfying `done`: one already received, or the next that comes.
    pub async fn seen(&mut self, id: &str, wait: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let earlier = self.events.get(id).into_iter().flatten().find(|e| done(e));
        match earlier {
            Some(event) => event.clone(),
            None => self.until(id, wait, done).await,
        }
    }

    /// The next event of `id`.
    pub async fn event(&mut self, id: &str, wait: Duration) -> Value {
        self.until(id, wait, |_| true).await
    }

    /// The next answer to operation `id`: a `next` payload, or an `error` message's errors
    /// as `{"errors": [...]}` (an operation refused before it ran).
    pub async fn answer(&mut self, id: &str, wait: Duration) -> Value {
        loop {
            match self.recv(wait).await {
                Some(Incoming::Json(message)) if message["id"] == id => {
                    return match message["type"].as_str() {
                        Some("error") => json!({ "errors": message["payload"] }),
                        _ => message["payload"].clone(),
                    };
                }
                Some(Incoming::Json(_)) => {}
                other => panic!("no answer to {id} within {wait:?}: {other:?}"),
            }
        }
    }

    /// Reads everything that arrives within `wait`.
    pub async fn drain(&mut self, wait: Duration) {
        while let Some(Incoming::Json(message)) = self.recv(wait).await {
            if let (Some("next" | "data"), Some(id)) =
                (message["type"].as_str(), message["id"].as_str())
            {
                self.events
                    .entry(id.to_owned())
                    .or_default()
                    .push(message["payload"].clone());
            }
        }
    }

    /// Waits for the server to close the socket; returns the close code.
    pub async fn closed(&mut self, wait: Duration) -> (u16, String) {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.recv(left).await {
                Some(Incoming::Closed(code, reason)) => return (code, reason),
                Some(Incoming::Json(_)) => {}
                None => panic!("the socket was not closed within {wait:?}"),
            }
        }
    }
}
