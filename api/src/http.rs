//! The HTTP surface: `/graphql` (POST, GET), `/health`, the
//! signed callbacks under `/webhooks/` (`crate::webhooks`), the storefront's `/events`
//! (`crate::storefront`); `/ready` and `/metrics` are
//! `ops::endpoints`, GraphiQL at `/` is `crate::graphiql`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Executor as _, Value};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequest as _, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{self, Credentials};
use crate::db::{Access, backend_name, count_statements};
use crate::domains::shopify::usage;
use crate::error::ApiError;
use crate::graphql::cost::Cost;
use crate::graphql::plan::PlanKey;
use crate::idempotency::{self, Claim};
use crate::request::Ended;
pub use crate::state::AppState;
use crate::throttle::{self, Charge, Refusal};

/// Builds the router the server and the tests use.
pub fn router(state: AppState) -> Router {
    // The webhooks are throttled by client address (429 with `Retry-After`).
    let webhooks = Router::new()
        .route(
            "/webhooks/payments",
            axum::routing::post(crate::webhooks::payments::receive),
        )
        .route(
            "/webhooks/shopify",
            axum::routing::post(crate::webhooks::shopify::receive),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            throttle::guard,
        ));
    let router = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(health))
        .merge(webhooks);
    let cors = cors(&state.options.cors_origins);
    let storefront = crate::storefront::routes(state.clone());
    let router = router.with_state(state);
    let router = match cors {
        Some(cors) => router.layer(cors),
        None => router,
    };
    // After the layer: `/events` has its own, open CORS.
    router.merge(storefront)
}

/// CORS for the configured origins: none configured, no CORS headers (browsers then allow
/// same-origin calls only); `*`, any origin but never with credentials; a list, those
/// origins, with credentials. Preflights are answered by the layer itself.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            header::ACCEPT,
            header::HeaderName::from_static("x-api-key"),
            header::HeaderName::from_static(idempotency::HEADER),
        ])
        .expose_headers([header::HeaderName::from_static("idempotent-replayed")])
        .max_age(std::time::Duration::from_secs(600));
    if origins.iter().any(|origin| origin == "*") {
        return Some(layer.allow_origin(AllowOrigin::any()));
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    Some(
        layer
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true),
    )
}

/// Whether a request's `Content-Type` is JSON (`application/json`, any parameters).
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// `POST /graphql`: one operation or a batch (at most `Limits::max_batch`), as
/// `application/json` only: anything else is a request a browser could send cross-site
/// without a preflight, so it is refused (415) before anything runs, as is a body over
/// `Limits::max_body_bytes` (413).
async fn graphql_post(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = client_of(&state, &parts.headers, &parts.extensions);
    let headers = parts.headers;
    if !is_json(&headers) {
        let error = ApiError::bad_input("content-type", "send the request as application/json");
        return error_response(StatusCode::UNSUPPORTED_MEDIA_TYPE, &error);
    }
    let max = state.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    let too_large = || {
        let error = ApiError::Limit {
            limit: "maxBodyBytes",
            message: format!("the request body exceeds the limit of {max} bytes (maxBodyBytes)"),
        };
        error_response(StatusCode::PAYLOAD_TOO_LARGE, &error)
    };
    if declared.is_some_and(|length| length > max) {
        return too_large();
    }
    // Read up to the limit and no further, whatever the body claims.
    let Ok(bytes) = axum::body::to_bytes(body, max).await else {
        return too_large();
    };
    let mut batch = match serde_json::from_slice::<BatchRequest>(&bytes) {
        Ok(batch) => batch,
        Err(error) => {
            let error = ApiError::bad_input("body", format!("not a GraphQL request: {error}"));
            return error_response(StatusCode::BAD_REQUEST, &error);
        }
    };
    if let BatchRequest::Batch(operations) = &batch
        && operations.len() > state.limits.max_batch
    {
        let error = ApiError::Limit {
            limit: "maxBatch",
            message: format!(
                "{} operations exceed the limit of {} (maxBatch)",
                operations.len(),
                state.limits.max_batch
            ),
        };
        return error_response(StatusCode::OK, &error);
    }
    if let Err(refused) = state.persisted.resolve(&mut batch) {
        return refused.into_response();
    }
    respond(&state, &headers, client, batch, usage::Method::Post).await
}

/// The client's address (for an anonymous caller's bucket and the sign-in limits).
fn client_of(
    state: &AppState,
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<std::net::IpAddr> {
    let peer = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0);
    state.throttle.client_address(headers, peer)
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions (see `realtime::socket`), or
/// `?query=...` for queries only; a mutation must be POSTed.
async fn graphql_get(
    State(state): State<AppState>,
    websocket: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: axum::extract::Request,
) -> Response {
    let client = client_of(&state, request.headers(), request.extensions());
    if let Ok(websocket) = websocket {
        let headers = request.headers().clone();
        return crate::realtime::socket::upgrade(websocket, &headers, client, state);
    }
    let headers = request.headers().clone();
    let request = match GraphQLRequest::<GraphQLRejection>::from_request(request, &state).await {
        Ok(request) => request.into_inner(),
        Err(rejection) => return rejection.into_response(),
    };
    let mut request = BatchRequest::Single(request);
    if let Err(refused) = state.persisted.resolve(&mut request) {
        return refused.into_response();
    }
    if access_of(&mut request) == Access::Write {
        let error = ApiError::bad_input("query", "mutations must be sent with POST");
        return error_response(StatusCode::METHOD_NOT_ALLOWED, &error);
    }
    respond(&state, &headers, client, request, usage::Method::Get).await
}

/// Runs a request within `Limits::request_timeout` and answers in the media type the
/// client accepts: `application/graphql-response+json` when its `Accept` names it, else
/// `application/json`. A shop's request is logged (`usage_logs`) however it ended.
async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    batch: BatchRequest,
    method: usage::Method,
) -> Response {
    let started = std::time::Instant::now();
    let timeout = state.limits.request_timeout;
    let running = execute(state, headers, client, batch);
    let mut response = match tokio::time::timeout(timeout, running).await {
        Ok(response) => response,
        // Dropping the request rolls its transaction back.
        Err(_) => {
            let error = ApiError::Timeout(format!(
                "the request took longer than {} ms and was cancelled",
                timeout.as_millis()
            ));
            error_response(StatusCode::OK, &error)
        }
    };
    let graphql_response = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.contains(GRAPHQL_RESPONSE));
    let media = if graphql_response {
        GRAPHQL_RESPONSE
    } else {
        "application/json"
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    log_usage(state, method, response.status(), started);
    response
}

/// Queues the usage log of the current request, when a shop made it: what the handler
/// noted in the request's record on whichever path it ended.
fn log_usage(
    state: &AppState,
    method: usage::Method,
    status: StatusCode,
    started: std::time::Instant,
) {
    let Some(record) = crate::telemetry::record::current() else {
        return;
    };
    let Some(principal) = record.principal() else {
        return;
    };
    let request = usage::Request {
        operation: record.operation().unwrap_or("anonymous"),
        method,
        http_status: status.as_u16(),
        status: record.code().unwrap_or("OK"),
        cost: record.cost(),
        duration: started.elapsed(),
    };
    state.usage_logs.request(principal, request);
}

/// The GraphQL-over-HTTP media type of responses.
const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// Whether `batch` holds a mutation (then it runs in a write transaction).
/// Runs a request's operations. Those of a batch that writes share one transaction and run
/// one after another, as one operation's mutations do: async-graphql would run them at
/// once, and a statement of one could then run inside another's step on the service's
/// account (`RequestDb::as_service`), or the step's with the caller's claims.
async fn run_operations(
    schema: &async_graphql::dynamic::Schema,
    batch: BatchRequest,
    access: Access,
) -> BatchResponse {
    match batch {
        BatchRequest::Batch(requests) if access == Access::Write => {
            let mut responses = Vec::with_capacity(requests.len());
            for request in requests {
                responses.push(schema.execute(request).await);
            }
            BatchResponse::Batch(responses)
        }
        batch => schema.execute_batch(batch).await,
    }
}

fn access_of(batch: &mut BatchRequest) -> Access {
    let mutates = |request: &mut async_graphql::Request| {
        // Most requests are queries: look for the keyword before parsing. The parsed
        // document stays in the request, so the executor does not parse it again.
        request.query.contains("mutation")
            && request.parsed_query().is_ok_and(|document| {
                document
                    .operations
                    .iter()
                    .any(|(_, op)| op.node.ty == OperationType::Mutation)
            })
    };
    let mut access = Access::Read;
    for request in batch.iter_mut() {
        if mutates(request) {
            access = Access::Write;
        }
    }
    access
}

/// Prices each operation of `batch`, counts its sign-in attempts and charges `principal`,
/// before any SQL of the request runs.
async fn meter(
    state: &AppState,
    principal: &auth::Principal,
    client: Option<std::net::IpAddr>,
    batch: &mut BatchRequest,
) -> Result<(Charge, Vec<Cost>), Refusal> {
    let mut costs = Vec::new();
    let mut attempts = Vec::new();
    for request in batch.iter_mut() {
        let variables = std::mem::take(&mut request.variables);
        let name = request.operation_name.take();
        // A document that does not parse costs the minimum; the executor says what is wrong.
        if let Ok(document) = request.parsed_query() {
            costs.push(Cost::of(document, name.as_deref(), &variables));
            let found = throttle::attempts::of(document, name.as_deref(), &variables, principal);
            attempts.extend(found);
        } else {
            costs.push(Cost::default());
        }
        request.variables = variables;
        request.operation_name = name;
    }
    state
        .throttle
        .attempt(client, &attempts)
        .map_err(|error| Refusal {
            error,
            report: None,
        })?;
    let requested: Vec<u64> = costs.iter().map(Cost::requested).collect();
    let charge = state
        .throttle
        .charge(&state.db, principal, client, &requested)
        .await?;
    Ok((charge, costs))
}

/// A refusal of the throttle: `THROTTLED` or `MAX_COST_EXCEEDED`, with `extensions.cost`
/// and `Retry-After` (whole seconds; `extensions.retryAfter` has the milliseconds).
fn throttled(refusal: &Refusal) -> Response {
    let cost = refusal.report.as_ref().map(throttle::CostReport::to_json);
    let mut response = error_response_with(StatusCode::OK, &refusal.error, cost);
    if let Some(seconds) = refusal.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

async fn execute(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    mut batch: BatchRequest,
) -> Response {
    crate::telemetry::record::operation(&batch);
    // Limits first: before credentials are looked up and before anything parses.
    for request in batch.iter_mut() {
        if let Err(error) = state.limits.admit(&request.query, &request.variables) {
            return error_response(StatusCode::OK, &error);
        }
    }
    let authenticated = match Credentials::from_headers(headers) {
        Ok(credentials) => auth::authenticate(&state.keys, &state.db, &credentials).await,
        Err(error) => Err(error),
    };
    let principal = match authenticated {
        Ok(authenticated) => authenticated.principal,
        Err(error @ ApiError::Unauthenticated(_)) => return unauthenticated(&error),
        Err(error) => return error_response(StatusCode::OK, &error),
    };
    crate::telemetry::record::principal(&principal);
    let (charge, costs) = match meter(state, &principal, client, &mut batch).await {
        Ok(metered) => metered,
        Err(refusal) => return throttled(&refusal),
    };
    let scope = match auth::scope_of(&state.db, &principal).await {
        Ok(scope) => scope,
        Err(error) => return error_response(StatusCode::OK, &error),
    };
    if let auth::Principal::User { id, .. } = &principal {
        state.usage.count(*id);
    }
    let access = access_of(&mut batch);
    let idempotency = match (headers.get(idempotency::HEADER), &batch, access) {
        (Some(value), BatchRequest::Single(single), Access::Write) => {
            match idempotency::parse_key(value) {
                Ok(key) => Some((key, idempotency::request_hash(single))),
                Err(error) => return error_response(StatusCode::OK, &error),
            }
        }
        _ => None,
    };
    let request = match state.open(principal.clone(), scope, access).await {
        Ok(request) => request,
        Err(error) => return error_response(StatusCode::OK, &error),
    };
    if let Some((key, hash)) = &idempotency {
        let answer = match idempotency::claim(request.db(), &principal, key, hash).await {
            Ok(Claim::Run) => None,
            Ok(Claim::Replay(body)) => Some(replayed(body)),
            Err(error) => Some(error_response(StatusCode::OK, &error)),
        };
        if let Some(answer) = answer {
            let _ = request.finish(false).await;
            return answer;
        }
    }
    let counter = Arc::new(AtomicUsize::new(0));
    // How many statements a request ran tells about the data behind it (row counts through
    // batching, whether a filter matched): only for the service and in development.
    let show_statements = state.options.development || principal == auth::Principal::Service;
    let plan_key = match &batch {
        BatchRequest::Single(single) if access == Access::Read => Some(PlanKey::new(
            &single.query,
            single.operation_name.as_deref(),
        )),
        _ => None,
    };
    if let (Some(key), BatchRequest::Single(single)) = (&plan_key, &batch) {
        let answer = (state.plans).answer(
            key,
            request.db(),
            request.scope(),
            &single.variables,
            &state.limits,
        );
        match count_statements(counter.clone(), answer).await {
            Ok(Some(answer)) => {
                return match request.finish(true).await {
                    Ok(_) => {
                        let statements = counter.load(Ordering::Relaxed);
                        crate::telemetry::record::finished("OK", statements);
                        let cost = &costs[0];
                        let data = serde_json::from_slice::<serde_json::Value>(&answer.data).ok();
                        let report = charge.settle(cost.requested(), cost.actual(data.as_ref()));
                        crate::telemetry::record::cost(report.actual.unwrap_or_default());
                        plan_response(answer, report, show_statements.then_some(statements))
                    }
                    Err(error) => error_response(StatusCode::OK, &error),
                };
            }
            // No plan, or not one for this request: the executor answers.
            Ok(None) => {}
            Err(error) => {
                let _ = request.finish(false).await;
                return error_response(StatusCode::OK, &error);
            }
        }
    }
    let batch = match batch {
        BatchRequest::Single(single) => BatchRequest::Single(request.attach(single)),
        BatchRequest::Batch(requests) => {
            BatchRequest::Batch(requests.into_iter().map(|r| request.attach(r)).collect())
        }
    };
    let response = count_statements(
        counter.clone(),
        run_operations(&state.schema, batch, access),
    )
    .await;
    let response = match response {
        BatchResponse::Single(response) => {
            BatchResponse::Single(with_cost(response, &charge, &costs[0]))
        }
        BatchResponse::Batch(responses) => BatchResponse::Batch(
            responses
                .into_iter()
                .zip(&costs)
                .map(|(response, cost)| with_cost(response, &charge, cost))
                .collect(),
        ),
    };
    let ok = match &response {
        BatchResponse::Single(r) => r.is_ok(),
        BatchResponse::Batch(rs) => rs.iter().all(|r| r.is_ok()),
    };
    let mut response = match response {
        BatchResponse::Single(response) if show_statements => {
            let statements = counter.load(Ordering::Relaxed);
            response.extension("sqlStatements", Value::from(statements))
        }
        BatchResponse::Single(response) => response,
        BatchResponse::Batch(mut responses) => {
            let statements = counter.load(Ordering::Relaxed);
            for response in &mut responses {
                crate::telemetry::record::response(response, 0);
            }
            crate::telemetry::record::finished("OK", statements);
            return match request.finish(ok).await {
                Ok(_) => GraphQLResponse::from(BatchResponse::Batch(responses)).into_response(),
                Err(error) => error_response(StatusCode::OK, &error),
            };
        }
    };
    if let (true, Some((key, _))) = (ok && !request.has_failed(), &idempotency) {
        // Stored in the request's transaction: kept exactly when its writes are.
        let body = serde_json::to_string(&response).unwrap_or_default();
        if let Err(error) = idempotency::store(request.db(), &principal, key, &body).await {
            let _ = request.finish(false).await;
            return error_response(StatusCode::OK, &error);
        }
    }
    let ended = match request.finish(ok).await {
        Ok(ended) => ended,
        Err(error) => return error_response(StatusCode::OK, &error),
    };
    if let (true, Some(key)) = (ok, &plan_key) {
        state.plans.learn(key);
    }
    if ended == Ended::RolledBack {
        // Nothing of the request was kept: say so beside the payloads.
        response = response.extension("transaction", Value::from("ROLLED_BACK"));
    }
    crate::telemetry::record::response(&mut response, counter.load(Ordering::Relaxed));
    GraphQLResponse::from(response).into_response()
}

/// `response` with `extensions.cost`, its actual cost refunded to the bucket.
fn with_cost(
    response: async_graphql::Response,
    charge: &Charge,
    cost: &Cost,
) -> async_graphql::Response {
    let report = charge.settle(cost.requested(), cost.actual(Some(&response.data)));
    crate::telemetry::record::cost(report.actual.unwrap_or_default());
    response.extension("cost", report.to_value())
}

/// The stored answer to a repeated `Idempotency-Key`, as it was first sent.
fn replayed(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            ),
        ],
        body,
    )
        .into_response()
}

/// A plan's answer, in the executor's envelope: `data`, then `extensions` with the cost
/// and the statement count (when shown).
fn plan_response(
    answer: crate::graphql::plan::Answer,
    cost: throttle::CostReport,
    statements: Option<usize>,
) -> Response {
    let mut body = Vec::with_capacity(answer.data.len() + 64);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(&answer.data);
    let statements = statements
        .map(|n| format!(",\"sqlStatements\":{n}"))
        .unwrap_or_default();
    body.extend_from_slice(
        format!(
            ",\"extensions\":{{\"cost\":{}{statements}}}}}",
            cost.to_json()
        )
        .as_bytes(),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/graphql-response+json"),
        )],
        body,
    )
        .into_response()
}

fn error_response(status: StatusCode, error: &ApiError) -> Response {
    error_response_with(status, error, None)
}

/// An error response, with `extensions.cost` when given.
fn error_response_with(
    status: StatusCode,
    error: &ApiError,
    cost: Option<serde_json::Value>,
) -> Response {
    let mut server = error.to_server_error();
    if let Some(id) = crate::telemetry::record::request_id() {
        server
            .extensions
            .get_or_insert_with(Default::default)
            .set("requestId", id);
    }
    crate::telemetry::record::finished(error.code(), 0);
    let mut body = json!({ "data": null, "errors": [server] });
    if let Some(cost) = cost {
        body["extensions"] = json!({ "cost": cost });
    }
    (status, Json(body)).into_response()
}

/// 401 with `WWW-Authenticate`: bad credentials are refused before anything runs.
fn unauthenticated(error: &ApiError) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, error);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    response
}

/// `GET /health`: 200 when the database answers, 503 when it does not.
async fn health(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    let backend = backend_name(&state.db);
    match state.db.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ok", "database": backend })),
        ),
        Err(err) => {
            tracing::warn!(%err, "health check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": backend })),
            )
        }
    }
}
