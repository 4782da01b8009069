//! The HTTP surface: `/graphql` (POST, GET), `/health`, and the
//! signed callbacks under `/webhooks/` (`crate::webhooks`); `/ready` and `/metrics` are
//! `ops::endpoints`, GraphiQL at `/` is `crate::graphiql`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Executor as _, Value};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLRequest, GraphQLResponse};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequest as _, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::{self, Credentials};
use crate::db::{Access, backend_name, count_statements};
use crate::error::ApiError;
use crate::graphql::plan::PlanKey;
use crate::idempotency::{self, Claim};
use crate::request::Ended;
pub use crate::state::AppState;

/// Builds the router the server and the tests use.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(health))
        .route(
            "/webhooks/payments",
            axum::routing::post(crate::webhooks::payments::receive),
        )
        .route(
            "/webhooks/shopify",
            axum::routing::post(crate::webhooks::shopify::receive),
        )
        .with_state(state)
}

/// `POST /graphql`: one operation or a batch (at most `Limits::max_batch`).
async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> Response {
    let mut batch = request.into_inner();
    if let BatchRequest::Batch(operations) = &batch
        && operations.len() > state.limits.max_batch
    {
        let error = ApiError::bad_input(
            "batch",
            format!(
                "{} operations exceed the limit of {}",
                operations.len(),
                state.limits.max_batch
            ),
        );
        return error_response(StatusCode::OK, &error);
    }
    if let Err(refused) = state.persisted.resolve(&mut batch) {
        return refused.into_response();
    }
    execute(&state, &headers, batch).await
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions (see `realtime::socket`), or
/// `?query=...` for queries only; a mutation must be POSTed.
async fn graphql_get(
    State(state): State<AppState>,
    websocket: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: axum::extract::Request,
) -> Response {
    if let Ok(websocket) = websocket {
        let headers = request.headers().clone();
        return crate::realtime::socket::upgrade(websocket, &headers, state);
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
    execute(&state, &headers, request).await
}

/// Whether `batch` holds a mutation (then it runs in a write transaction).
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

async fn execute(state: &AppState, headers: &HeaderMap, mut batch: BatchRequest) -> Response {
    crate::telemetry::record::operation(&batch);
    let authenticated = match Credentials::from_headers(headers) {
        Ok(credentials) => auth::authenticate(&state.keys, &state.db, &credentials).await,
        Err(error) => Err(error),
    };
    let principal = match authenticated {
        Ok(authenticated) => authenticated.principal,
        Err(error @ ApiError::Unauthenticated(_)) => return unauthenticated(&error),
        Err(error) => return error_response(StatusCode::OK, &error),
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
                        plan_response(answer, statements)
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
    let response = count_statements(counter.clone(), state.schema.execute_batch(batch)).await;
    let ok = match &response {
        BatchResponse::Single(r) => r.is_ok(),
        BatchResponse::Batch(rs) => rs.iter().all(|r| r.is_ok()),
    };
    let mut response = match response {
        BatchResponse::Single(response) => {
            let statements = counter.load(Ordering::Relaxed);
            response.extension("sqlStatements", Value::from(statements))
        }
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
/// and the statement count.
fn plan_response(answer: crate::graphql::plan::Answer, statements: usize) -> Response {
    let mut body = Vec::with_capacity(answer.data.len() + 64);
    body.extend_from_slice(b"{\"data\":");
    body.extend_from_slice(&answer.data);
    body.extend_from_slice(
        format!(
            ",\"extensions\":{{\"cost\":{},\"sqlStatements\":{statements}}}}}",
            answer.cost
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
    let body = json!({
        "data": null,
        "errors": [{
            "message": error.to_string(),
            "extensions": crate::telemetry::record::error_extensions(error.code()),
        }],
    });
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
