//! The WebSocket transport on `/graphql`: `graphql-transport-ws` and the legacy
//! `graphql-ws`, through async-graphql's protocol engine, with the connection rules the
//! engine leaves to the server:
//!
//! | when | close code |
//! |---|---|
//! | a message larger than `Limits::max_body_bytes` | 1009 |
//! | `graphql-transport-ws`: a binary frame, invalid JSON, an unknown message type or a message without its fields | 4400 |
//! | `graphql-transport-ws`: `subscribe` before `connection_ack` | 4401 |
//! | no `connection_init` within [`INIT_TIMEOUT`] | 4408 |
//! | `graphql-transport-ws`: a second `connection_init` | 4429 |
//! | `connection_init` credentials refused | 4403 (legacy: `connection_error` first) |
//! | the token expires: the `graphql-ws` client retries on 4403, with fresh `connectionParams` | 4403 |
//! | credentials without expiry (API keys) stop verifying | 4401 |
//! | a `subscribe`/`start` reuses the id of a running operation | 4409 |
//! | the credentials could not be checked (database down) | 4500 |
//! | the server shuts down (SIGTERM, SIGINT) | 1001 |
//!
//! Before closing for an expired token or a shutdown, each subscription is told the
//! cursor to resume after (see [`super::resume`]).
//!
//! A `graphql-transport-ws` operation refused before it ran (a document that does not parse
//! or validate, a limit, the throttle, a mutation) gets an `error` message with its errors,
//! as the protocol says, not `next` and `complete`. Queries have `Limits::request_timeout`,
//! as over HTTP. Pings (`ping` messages and ping frames together) are answered at most
//! [`MAX_PINGS`] times per [`PING_WINDOW`]: past that `ping` messages go unanswered, and
//! ping frames, which the transport answers by itself, close the socket with 1008.
//!
//! An operation past `Limits::max_subscriptions_per_connection` on the socket, or past
//! `Limits::max_subscriptions_per_principal` over all of its principal's sockets, gets an
//! `error` message (`THROTTLED`) and is not run; the connection stays open.
//!
//! Credentials come in the `connection_init` payload, as on HTTP (see
//! [`Credentials::from_payload`]). Subscriptions run with the connection's principal;
//! queries may be sent too and run as over HTTP; mutations must be POSTed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols, WsMessage};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request, Response};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use serde::Deserialize;

use super::broker::Session;
use super::resume::{self, Closing, Position, Positions, Reason};
use crate::auth::{self, Credentials, Principal};
use crate::db::Access;
use crate::domains::shopify::usage;
use crate::error::ApiError;
use crate::graphql::batch_loader;
use crate::graphql::cost::Cost;
use crate::state::AppState;
use crate::throttle::{Charge, Refusal};

/// How long a client has to send `connection_init`.
pub const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often credentials that do not expire (API keys) are checked again.
const RECHECK_EVERY: Duration = Duration::from_secs(60);

/// The most pings a socket gets answered per [`PING_WINDOW`].
pub const MAX_PINGS: u32 = 20;

/// The window [`MAX_PINGS`] counts over.
pub const PING_WINDOW: Duration = Duration::from_secs(10);

/// How long a closing connection waits for its subscriptions to hand on the events they
/// took and for its queries to answer, before it closes regardless.
const CLOSING_GRACE: Duration = Duration::from_secs(2);

/// Open WebSocket operations per principal, over all of its connections to this
/// instance, for `Limits::max_subscriptions_per_principal`.
#[derive(Clone, Default)]
pub struct OpenOperations(Arc<Mutex<HashMap<Principal, usize>>>);

impl OpenOperations {
    /// A place for one more operation of `principal`, unless it has `max` open already.
    fn acquire(&self, principal: &Principal, max: usize) -> Option<OpenOperation> {
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(principal.clone()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(OpenOperation {
            operations: self.clone(),
            principal: principal.clone(),
        })
    }

    /// How many operations `principal` has open.
    pub fn of(&self, principal: &Principal) -> usize {
        let open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(principal).copied().unwrap_or_default()
    }
}

/// One open operation's place; dropping it (the operation completed, or its connection
/// closed) frees it.
struct OpenOperation {
    operations: OpenOperations,
    principal: Principal,
}

impl Drop for OpenOperation {
    fn drop(&mut self) {
        let mut open = self
            .operations
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.principal);
            }
        }
    }
}

/// Upgrades `GET /graphql` to a GraphQL WebSocket, or answers 400 when the client offers
/// neither protocol.
pub fn upgrade(
    upgrade: WebSocketUpgrade,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    state: AppState,
) -> HttpResponse {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let Some(protocol) = protocol else {
        return (
            StatusCode::BAD_REQUEST,
            "offer the graphql-transport-ws or graphql-ws WebSocket subprotocol",
        )
            .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Idle connections are the common case: small buffers that grow when needed.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        // A backstop only: `serve` closes with 1009 past the limit itself, which the
        // transport's own refusal (an error, no close frame) would not.
        .max_message_size(state.limits.max_body_bytes.saturating_mul(2))
        .max_frame_size(state.limits.max_body_bytes.saturating_mul(2))
        .on_upgrade(move |socket| serve(socket, protocol, client, state))
}

/// Runs operations for one connection: subscriptions with its session, queries as over
/// HTTP (one transaction under the principal's claims).
#[derive(Clone)]
struct ConnectionExecutor {
    state: AppState,
    session: Arc<OnceLock<Arc<Session>>>,
    positions: Positions,
    /// Operations whose one response is a refusal before execution: the socket sends it as
    /// an `error` message.
    refused: RefusedOperations,
    /// The client's address (an anonymous connection's bucket).
    client: Option<std::net::IpAddr>,
}

fn operation_type(request: &Request) -> Option<OperationType> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let name = request.operation_name.as_deref();
    document
        .operations
        .iter()
        .find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name)
        .map(|(_, op)| op.node.ty)
}

fn error_response(error: ApiError) -> Response {
    Response::from_errors(vec![error.to_server_error()])
}

/// Operation ids of a connection whose response refused them before execution.
type RefusedOperations = Arc<Mutex<std::collections::HashSet<String>>>;

/// Whether `response` refused the operation before it ran: no data, and errors that name
/// no field (parsing, validation, limits, the throttle); execution errors have a path.
fn refused_before_execution(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|error| error.path.is_empty())
}

/// A refusal of the throttle, with the cost it was about.
fn refused(refusal: Refusal) -> Response {
    let response = error_response(refusal.error);
    match refusal.report {
        Some(report) => response.extension("cost", report.to_value()),
        None => response,
    }
}

impl ConnectionExecutor {
    /// Charges the principal the operation's requested cost (from the same bucket as its
    /// HTTP requests), before anything of it runs.
    async fn meter(
        &self,
        session: &Session,
        request: &mut Request,
    ) -> Result<(Charge, Cost), Refusal> {
        let variables = std::mem::take(&mut request.variables);
        let name = request.operation_name.take();
        let cost = request
            .parsed_query()
            .map(|document| Cost::of(document, name.as_deref(), &variables))
            .unwrap_or_default();
        request.variables = variables;
        request.operation_name = name;
        let state = &self.state;
        let requested = [cost.requested()];
        let charge = (state.throttle)
            .charge(&state.db, &session.principal, self.client, &requested)
            .await?;
        Ok((charge, cost))
    }

    /// A query, within the request timeout, as over HTTP (dropping it rolls back); logged
    /// as a shop's request however it ends.
    async fn run_once(&self, session: Arc<Session>, request: Request) -> Response {
        let started = std::time::Instant::now();
        let operation = crate::telemetry::record::operation_name(&request).to_owned();
        let timeout = self.state.limits.request_timeout;
        let cost = std::sync::atomic::AtomicU64::new(0);
        let ran = tokio::time::timeout(timeout, self.run_query(&session, request, &cost)).await;
        let response = match ran {
            Ok(response) => response,
            Err(_) => error_response(ApiError::Timeout(format!(
                "the request took longer than {} ms and was cancelled",
                timeout.as_millis()
            ))),
        };
        let status = crate::telemetry::record::status_of(&response);
        let cost = cost.into_inner();
        self.log_usage(&session, &operation, status, cost, started);
        response
    }

    /// Runs a query; its actual cost goes to `spent` once known.
    async fn run_query(
        &self,
        session: &Session,
        mut request: Request,
        spent: &std::sync::atomic::AtomicU64,
    ) -> Response {
        let state = &self.state;
        let (charge, cost) = match self.meter(session, &mut request).await {
            Ok(metered) => metered,
            Err(refusal) => return refused(refusal),
        };
        let principal = session.principal.clone();
        let opened = match state.open(principal, session.scope(), Access::Read).await {
            Ok(opened) => opened,
            Err(error) => return error_response(error),
        };
        let response = state.schema.execute(opened.attach(request)).await;
        let report = charge.settle(cost.requested(), cost.actual(Some(&response.data)));
        let actual = report.actual.unwrap_or_default();
        spent.store(actual, std::sync::atomic::Ordering::Relaxed);
        match opened.finish(response.is_ok()).await {
            Ok(_) => response.extension("cost", report.to_value()),
            Err(error) => error_response(error),
        }
    }

    /// Queues the usage log of one operation of the connection, when a shop runs it.
    fn log_usage(
        &self,
        session: &Session,
        operation: &str,
        status: &str,
        cost: u64,
        started: std::time::Instant,
    ) {
        let request = usage::Request {
            operation,
            method: usage::Method::WebSocket,
            http_status: StatusCode::OK.as_u16(),
            status,
            cost,
            duration: started.elapsed(),
        };
        self.state.usage_logs.request(&session.principal, request);
    }

    /// Logs an operation refused before it ran.
    fn log_refused(&self, session: &Session, request: &Request, error: &ApiError) {
        let operation = crate::telemetry::record::operation_name(request);
        let now = std::time::Instant::now();
        self.log_usage(session, operation, error.code(), 0, now);
    }
}

impl Executor for ConnectionExecutor {
    async fn execute(&self, request: Request) -> Response {
        match self.session.get() {
            Some(session) => self.run_once(session.clone(), request).await,
            None => error_response(ApiError::Unauthenticated(
                "the connection is not initialised".to_owned(),
            )),
        }
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        // The socket named the operation: its subscription reports where it has got to, and
        // a refusal of it is marked for the socket.
        let id = match request.extensions.0.remove(resume::OPERATION_ID) {
            Some(async_graphql::Value::String(id)) => Some(id),
            _ => None,
        };
        if let Some(id) = &id {
            let position = Arc::new(Position::default());
            self.positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(id.clone(), position.clone());
            request = request.data(position);
        }
        let responses = self.responses(request, session_data);
        let (Some(id), refused) = (id, self.refused.clone()) else {
            return responses;
        };
        let mut first = true;
        responses
            .inspect(move |response| {
                if std::mem::take(&mut first) && refused_before_execution(response) {
                    refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(id.clone());
                }
            })
            .boxed()
    }
}

impl ConnectionExecutor {
    fn responses(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        let Some(session) = self.session.get().cloned() else {
            return futures_util::stream::once(async {
                error_response(ApiError::Unauthenticated(
                    "the connection is not initialised".to_owned(),
                ))
            })
            .boxed();
        };
        // Limits before the document is parsed to find its type.
        if let Err(error) = self.state.limits.admit(&request.query, &request.variables) {
            self.log_refused(&session, &request, &error);
            return futures_util::stream::once(async { error_response(error) }).boxed();
        }
        match operation_type(&request) {
            Some(OperationType::Mutation) => {
                let error =
                    ApiError::bad_input("query", "mutations must be sent with POST /graphql");
                self.log_refused(&session, &request, &error);
                futures_util::stream::once(async { error_response(error) }).boxed()
            }
            Some(OperationType::Query) => {
                let this = self.clone();
                futures_util::stream::once(async move { this.run_once(session, request).await })
                    .boxed()
            }
            // Subscriptions read the connection's data (see `connection_data`). They are
            // charged their requested cost once, when they start; their events are not.
            _ => {
                let this = self.clone();
                futures_util::stream::once(async move {
                    // Logged when it starts, with the cost it was charged.
                    let started = std::time::Instant::now();
                    let operation = crate::telemetry::record::operation_name(&request).to_owned();
                    match this.meter(&session, &mut request).await {
                        Ok((_, cost)) => {
                            this.log_usage(&session, &operation, "OK", cost.requested(), started);
                            this.state.schema.execute_stream_with_session_data(
                                request,
                                session_data.unwrap_or_default(),
                            )
                        }
                        Err(refusal) => {
                            this.log_refused(&session, &request, &refusal.error);
                            futures_util::stream::once(async { refused(refusal) }).boxed()
                        }
                    }
                })
                .flatten()
                .boxed()
            }
        }
    }
}

/// What the connection's subscriptions read: its session, the broker, and the database
/// for the relations a subscriber selects below an event's row. One per connection; the
/// loader must not cache, since it serves every event of every subscription.
fn connection_data(state: &AppState, session: &Arc<Session>, closing: Closing) -> Data {
    let context = state.subscription_context(session.scope(), session.principal.clone());
    let loader = batch_loader(context.db.clone(), context.scope.clone());
    loader.enable_all_cache(false);
    let mut data = Data::default();
    data.insert(context);
    data.insert(loader);
    data.insert(state.realtime.clone());
    data.insert(session.clone());
    data.insert(closing);
    data
}

/// The client's messages on their way to the protocol engine: a queue that holds nothing
/// while idle (an idle connection is the common case).
#[derive(Default)]
struct Inbox {
    queue: Mutex<std::collections::VecDeque<Vec<u8>>>,
    waker: futures_util::task::AtomicWaker,
}

impl Inbox {
    fn push(&self, message: Vec<u8>) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(message);
        self.waker.wake();
    }

    fn stream(self: Arc<Self>) -> impl futures_util::Stream<Item = Vec<u8>> {
        futures_util::stream::poll_fn(move |cx| {
            self.waker.register(cx.waker());
            match self
                .queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop_front()
            {
                Some(message) => std::task::Poll::Ready(Some(message)),
                None => std::task::Poll::Pending,
            }
        })
    }
}

/// The parts of a client message the connection rules look at.
#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "text_or_nothing")]
    id: Option<String>,
    payload: Option<serde_json::Value>,
}

/// An id that is not a string reads as none (a malformed message, refused as such).
fn text_or_nothing<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(text) => Some(text),
        _ => None,
    })
}

/// The message types of `graphql-transport-ws` a client may send.
const CLIENT_TYPES: [&str; 5] = ["connection_init", "ping", "pong", "subscribe", "complete"];

/// Reads a client message. On `graphql-transport-ws` a message the protocol does not allow
/// is an error (its close reason): a binary frame, invalid JSON, an unknown type, a
/// `subscribe` without an id and a query, a `complete` without an id. On the legacy
/// protocol what does not parse is `None`, for the engine to answer by its own rules.
fn read_message(
    protocol: WebSocketProtocols,
    bytes: &[u8],
    binary: bool,
) -> Result<Option<ClientMessage>, String> {
    let parsed = serde_json::from_slice::<ClientMessage>(bytes);
    if protocol != WebSocketProtocols::GraphQLWS {
        return Ok(parsed.ok());
    }
    if binary {
        return Err(
            "Invalid message received: binary frames are not part of the protocol".to_owned(),
        );
    }
    let message = parsed
        .map_err(|_| "Invalid message received: not a JSON message with a type".to_owned())?;
    if !CLIENT_TYPES.contains(&message.kind.as_str()) {
        return Err(format!(
            "Invalid message received: unknown type {:?}",
            message.kind
        ));
    }
    let has_id = message.id.as_deref().is_some_and(|id| !id.is_empty());
    let has_query = message
        .payload
        .as_ref()
        .and_then(|payload| payload.get("query"))
        .is_some_and(serde_json::Value::is_string);
    match message.kind.as_str() {
        "subscribe" if !has_id || !has_query => Err(
            "Invalid message received: subscribe needs an id and a payload with a query".to_owned(),
        ),
        "complete" if !has_id => Err("Invalid message received: complete needs an id".to_owned()),
        _ => Ok(Some(message)),
    }
}

/// An `error` message refusing operation `id` (nothing of it ran).
fn operation_error(protocol: WebSocketProtocols, id: &str, error: &ApiError) -> String {
    let error = serde_json::to_value(error.to_server_error()).unwrap_or_default();
    let payload = match protocol {
        WebSocketProtocols::GraphQLWS => serde_json::json!([error]),
        WebSocketProtocols::SubscriptionsTransportWS => error,
    };
    serde_json::json!({ "type": "error", "id": id, "payload": payload }).to_string()
}

/// Checks `connection_init` credentials.
async fn authenticate(
    state: &AppState,
    payload: &serde_json::Value,
) -> Result<(Arc<Session>, Credentials, Option<DateTime<Utc>>), ApiError> {
    let credentials = Credentials::from_payload(payload)?;
    let authenticated = auth::authenticate(&state.keys, &state.db, &credentials).await?;
    let scope = auth::scope_of(&state.db, &authenticated.principal).await?;
    let session = Arc::new(Session::new(authenticated.principal, scope));
    Ok((session, credentials, authenticated.expires_at))
}

fn until(at: DateTime<Utc>) -> tokio::time::Instant {
    let left = (at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::Instant::now() + left
}

enum Event {
    Client(Option<Result<Message, axum::Error>>),
    Server(Option<WsMessage>),
    Close(u16, String),
    /// Close after telling each subscription where to resume.
    Closing(u16, &'static str, Reason),
    Recheck,
}

/// Counts pings against [`MAX_PINGS`] per [`PING_WINDOW`].
struct Pings {
    since: tokio::time::Instant,
    count: u32,
}

impl Default for Pings {
    fn default() -> Self {
        Self {
            since: tokio::time::Instant::now(),
            count: 0,
        }
    }
}

impl Pings {
    /// Counts one ping; whether it may be answered.
    fn allow(&mut self) -> bool {
        if self.since.elapsed() >= PING_WINDOW {
            *self = Self::default();
        }
        self.count = self.count.saturating_add(1);
        self.count <= MAX_PINGS
    }
}

/// A `next` message of an operation refused before it ran, as `graphql-transport-ws`
/// wants it: `{"type":"error","id":...,"payload":[errors]}`.
struct ErrorMessage {
    id: String,
    message: String,
}

fn as_error(refused: &RefusedOperations, next: &str) -> Option<ErrorMessage> {
    let mut refused = refused.lock().unwrap_or_else(PoisonError::into_inner);
    if refused.is_empty() {
        return None;
    }
    let message: ClientMessage = serde_json::from_str(next).ok()?;
    let id = message.id?;
    if !refused.remove(&id) {
        return None;
    }
    let errors = message.payload?.get("errors")?.clone();
    let message = serde_json::json!({ "type": "error", "id": id, "payload": errors }).to_string();
    Some(ErrorMessage { id, message })
}

/// `message` (a client's `subscribe`/`start`) with the operation's id in its payload's
/// `extensions`, for the executor (see [`resume::OPERATION_ID`]).
fn with_operation_id(message: &ClientMessage, id: &str) -> Option<Vec<u8>> {
    let mut payload = message.payload.clone()?;
    let object = payload.as_object_mut()?;
    let extensions = object
        .entry("extensions")
        .or_insert_with(|| serde_json::json!({}));
    if extensions.is_null() {
        *extensions = serde_json::json!({});
    }
    extensions
        .as_object_mut()?
        .insert(resume::OPERATION_ID.to_owned(), id.into());
    let message = serde_json::json!({ "type": message.kind, "id": id, "payload": payload });
    serde_json::to_vec(&message).ok()
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
}

async fn serve(
    mut socket: WebSocket,
    protocol: WebSocketProtocols,
    client: Option<std::net::IpAddr>,
    state: AppState,
) {
    let session = Arc::new(OnceLock::new());
    let positions = Positions::default();
    let refused = RefusedOperations::default();
    let executor = ConnectionExecutor {
        state: state.clone(),
        session: session.clone(),
        positions: positions.clone(),
        refused: refused.clone(),
        client,
    };
    // `complete` messages not to send: their operation's refusal went as an `error`.
    let mut ended = std::collections::HashSet::new();
    let mut pings = Pings::default();
    let (close_feeds, closing_signal) = Closing::new();
    // Set once the connection is closing: the code and reason it closes with, and why.
    let mut closing: Option<(u16, &'static str, Reason)> = None;
    let grace = tokio::time::sleep(Duration::from_secs(3600 * 24 * 365));
    futures_util::pin_mut!(grace);
    let inbox = Arc::new(Inbox::default());
    // Counted while open; closed with 1001 when the server shuts down (lifecycle.rs).
    let _open = state.shutdown.socket();
    let going_away = state.shutdown.begun();
    futures_util::pin_mut!(going_away);
    let init_data: Arc<Mutex<Option<Data>>> = Arc::default();
    let slot = init_data.clone();
    // Boxed: the engine lives as long as the connection, the rest of this future is small.
    let mut engine = Box::pin(
        async_graphql::http::WebSocket::new(executor, inbox.clone().stream(), protocol)
            .on_connection_init(move |_| {
                let data = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
                async move { data.ok_or_else(|| "the connection is not initialised".into()) }
            }),
    );

    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    futures_util::pin_mut!(init_deadline);
    let expiry = tokio::time::sleep(Duration::from_secs(3600 * 24 * 365));
    futures_util::pin_mut!(expiry);
    let mut recheck =
        tokio::time::interval_at(tokio::time::Instant::now() + RECHECK_EVERY, RECHECK_EVERY);
    let mut initialised = false;
    let mut expires = false;
    let mut credentials: Option<Credentials> = None;
    // The operations running, by id, each holding its place under the caps.
    let mut active: HashMap<String, OpenOperation> = HashMap::new();

    loop {
        let event = tokio::select! {
            message = socket.recv() => Event::Client(message),
            message = engine.next() => Event::Server(message),
            () = &mut init_deadline, if !initialised => {
                Event::Close(4408, "Connection initialisation timeout".to_owned())
            }
            () = &mut expiry, if expires && closing.is_none() => {
                Event::Closing(4403, "Forbidden: token expired", Reason::TokenExpired)
            }
            _ = recheck.tick(), if credentials.is_some() && !expires => Event::Recheck,
            () = &mut going_away, if closing.is_none() => Event::Closing(
                1001,
                "Server shutting down: reconnect, resume with after",
                Reason::ServerShutdown,
            ),
            () = &mut grace, if closing.is_some() => {
                let (code, reason, _) = closing.unwrap_or((1001, "", Reason::ServerShutdown));
                Event::Close(code, reason.to_owned())
            }
        };
        match event {
            Event::Client(Some(Ok(message))) => {
                let binary = matches!(message, Message::Binary(_));
                let bytes: Vec<u8> = match message {
                    Message::Text(text) => text.as_bytes().to_vec(),
                    Message::Binary(bytes) => bytes.to_vec(),
                    Message::Close(_) => break,
                    // The transport answers ping frames itself: past the bound, it stops.
                    Message::Ping(_) if !pings.allow() => {
                        close(&mut socket, 1008, "Too many pings").await;
                        // Read what the client sent meanwhile until it answers the close
                        // (at most a second): unread data would reset the connection
                        // before the close frame reaches it.
                        let _ = tokio::time::timeout(Duration::from_secs(1), async {
                            while let Some(Ok(message)) = socket.recv().await {
                                if matches!(message, Message::Close(_)) {
                                    break;
                                }
                            }
                        })
                        .await;
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                };
                if bytes.len() > state.limits.max_body_bytes {
                    close(&mut socket, 1009, "Message too big").await;
                    break;
                }
                let parsed = match read_message(protocol, &bytes, binary) {
                    Ok(parsed) => parsed,
                    Err(reason) => {
                        close(&mut socket, 4400, &reason).await;
                        break;
                    }
                };
                let Some(parsed) = parsed else {
                    // Legacy protocol: not ours to judge, the engine answers it.
                    inbox.push(bytes);
                    continue;
                };
                match parsed.kind.as_str() {
                    // Past the bound, pings go unanswered.
                    "ping" if !pings.allow() => continue,
                    "connection_init" if !initialised => {
                        initialised = true;
                        let payload = parsed.payload.unwrap_or_default();
                        match Box::pin(authenticate(&state, &payload)).await {
                            Ok((found, presented, expires_at)) => {
                                *init_data.lock().unwrap_or_else(PoisonError::into_inner) =
                                    Some(connection_data(&state, &found, closing_signal.clone()));
                                let _ = session.set(found);
                                if let Some(at) = expires_at {
                                    expiry.as_mut().reset(until(at));
                                    expires = true;
                                } else if presented != Credentials::None {
                                    credentials = Some(presented);
                                }
                            }
                            Err(
                                ApiError::Unauthenticated(reason) | ApiError::Forbidden(reason),
                            ) => {
                                if protocol == WebSocketProtocols::SubscriptionsTransportWS {
                                    let refusal = serde_json::json!({
                                        "type": "connection_error",
                                        "payload": { "message": reason },
                                    });
                                    let _ = socket
                                        .send(Message::Text(refusal.to_string().into()))
                                        .await;
                                }
                                close(&mut socket, 4403, &format!("Forbidden: {reason}")).await;
                                break;
                            }
                            Err(error) => {
                                tracing::error!(
                                    ?error,
                                    "realtime: checking connection_init failed"
                                );
                                close(&mut socket, 4500, "Internal server error").await;
                                break;
                            }
                        }
                    }
                    "connection_init" if protocol == WebSocketProtocols::GraphQLWS => {
                        close(&mut socket, 4429, "Too many initialisation requests").await;
                        break;
                    }
                    "subscribe" | "start" => {
                        let Some(current) = session.get() else {
                            if protocol == WebSocketProtocols::GraphQLWS {
                                close(&mut socket, 4401, "Unauthorized").await;
                                break;
                            }
                            inbox.push(bytes);
                            continue;
                        };
                        if closing.is_some() {
                            // About to close: nothing new starts.
                            continue;
                        }
                        let id = parsed.id.clone().unwrap_or_default();
                        if active.contains_key(&id) {
                            let reason = format!("Subscriber for {id} already exists");
                            close(&mut socket, 4409, &reason).await;
                            break;
                        }
                        let limits = &state.limits;
                        let place = if active.len() >= limits.max_subscriptions_per_connection {
                            Err((
                                "maxSubscriptionsPerConnection",
                                limits.max_subscriptions_per_connection,
                                "on this connection",
                            ))
                        } else {
                            state
                                .operations
                                .acquire(&current.principal, limits.max_subscriptions_per_principal)
                                .ok_or((
                                    "maxSubscriptionsPerPrincipal",
                                    limits.max_subscriptions_per_principal,
                                    "for these credentials",
                                ))
                        };
                        match place {
                            Ok(place) => {
                                if let Some(named) = with_operation_id(&parsed, &id) {
                                    inbox.push(named);
                                } else {
                                    inbox.push(bytes);
                                }
                                active.insert(id, place);
                                continue;
                            }
                            Err((limit, max, scope)) => {
                                let error = ApiError::Throttled(format!(
                                    "at most {max} operations may be open at once {scope} ({limit})"
                                ));
                                let refusal = operation_error(protocol, &id, &error);
                                if socket.send(Message::Text(refusal.into())).await.is_err() {
                                    break;
                                }
                                continue;
                            }
                        }
                    }
                    "complete" | "stop" => {
                        if let Some(id) = &parsed.id {
                            active.remove(id);
                            positions
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .remove(id);
                        }
                    }
                    _ => {}
                }
                inbox.push(bytes);
            }
            Event::Client(_) => break,
            Event::Server(Some(WsMessage::Text(text))) => {
                let mut text = text;
                if protocol == WebSocketProtocols::GraphQLWS
                    && text.starts_with(r#"{"type":"next""#)
                    && let Some(error) = as_error(&refused, &text)
                {
                    // The operation was refused before it ran: an `error`, and no `complete`.
                    text = error.message;
                    active.remove(&error.id);
                    positions
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&error.id);
                    ended.insert(error.id);
                } else if text.starts_with(r#"{"type":"complete""#)
                    && let Ok(done) = serde_json::from_str::<ClientMessage>(&text)
                    && let Some(id) = done.id
                {
                    refused
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                    if ended.remove(&id) {
                        continue;
                    }
                    active.remove(&id);
                    let position = positions
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .remove(&id);
                    // Closing: a subscription's end says where to resume, not `complete`.
                    if let (Some((_, _, why)), Some(cursor)) =
                        (closing, position.and_then(|p| p.get()))
                    {
                        let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
                        text = resume::last_message(legacy, &id, cursor, why);
                    }
                }
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
                if let Some((code, reason, _)) = closing
                    && active.is_empty()
                {
                    close(&mut socket, code, reason).await;
                    break;
                }
            }
            Event::Server(Some(WsMessage::Close(code, reason))) => {
                close(&mut socket, code, &reason).await;
                break;
            }
            Event::Server(None) => {
                close(&mut socket, 1000, "Normal Closure").await;
                break;
            }
            Event::Close(code, reason) => {
                close(&mut socket, code, &reason).await;
                break;
            }
            Event::Closing(code, reason, why) => {
                // The subscriptions stop after the event they are on; each one's end then
                // becomes its last message (above).
                close_feeds.send_replace(true);
                if active.is_empty() {
                    close(&mut socket, code, reason).await;
                    break;
                }
                closing = Some((code, reason, why));
                grace
                    .as_mut()
                    .reset(tokio::time::Instant::now() + CLOSING_GRACE);
            }
            Event::Recheck => {
                if let (Some(presented), Some(current)) = (&credentials, session.get()) {
                    match Box::pin(auth::authenticate(&state.keys, &state.db, presented)).await {
                        Ok(again) if again.principal == current.principal => {}
                        Ok(_) | Err(ApiError::Unauthenticated(_)) => {
                            close(&mut socket, 4401, "Credentials no longer valid").await;
                            break;
                        }
                        Err(error) => {
                            tracing::warn!(?error, "realtime: re-checking credentials failed");
                        }
                    }
                }
            }
        }
    }
}
