//! The HTTP surface: `/graphql` (POST, GET), GraphiQL at `/`, and `/health`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse, Executor as _, Value};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLRequest, GraphQLResponse};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{FromRequest as _, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::auth::{self, Credentials, Keys, Principal};
use crate::db::{End, RequestDb, backend_name, count_statements};
use crate::error::ApiError;
use crate::graphql::plan::{PlanCache, PlanKey};
use crate::graphql::{Limits, RequestContext, batch_loader};
use crate::store::Scope;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The GraphQL schema.
    pub schema: async_graphql::dynamic::Schema,
    /// The keys credentials are verified with.
    pub keys: Arc<Keys>,
    /// The request limits.
    pub limits: Limits,
    /// Compiled read plans (the executor's fast path), by document.
    pub plans: Arc<PlanCache>,
    /// Whether the API scopes reads by the principal. Always true in service; tests turn
    /// it off to show that PostgreSQL's row-level security still filters every row.
    pub api_scoping: bool,
    /// The realtime broker: subscriptions, and (on SQLite) the writes mutations publish.
    pub realtime: crate::realtime::Broker,
}

impl AppState {
    /// What every resolver of one request (or one WebSocket connection) reads.
    pub fn request_context(
        &self,
        db: RequestDb,
        scope: Scope,
        principal: Principal,
    ) -> RequestContext {
        RequestContext {
            db,
            scope,
            principal,
            pool: self.db.clone(),
            keys: self.keys.clone(),
        }
    }

    /// The scope reads run with: the principal's, unless a test switched the API's own
    /// scoping off (then only row-level security filters).
    pub fn read_scope(&self, scope: Scope) -> Scope {
        if self.api_scoping {
            scope
        } else {
            Scope::Service
        }
    }
}

/// Builds the router the server and the tests use.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/health", get(health))
        .with_state(state)
}

async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Stratix")
            .finish(),
    )
}

/// `POST /graphql`: one operation or a batch (at most `Limits::max_batch`).
async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLBatchRequest,
) -> Response {
    let batch = request.into_inner();
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
    let mutation = async_graphql::parser::parse_query(&request.query).is_ok_and(|document| {
        document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty == async_graphql::parser::types::OperationType::Mutation)
    });
    if mutation {
        let error = ApiError::bad_input("query", "mutations must be sent with POST");
        return error_response(StatusCode::METHOD_NOT_ALLOWED, &error);
    }
    execute(&state, &headers, BatchRequest::Single(request)).await
}

async fn execute(state: &AppState, headers: &HeaderMap, batch: BatchRequest) -> Response {
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
        Ok(scope) => state.read_scope(scope),
        Err(error) => return error_response(StatusCode::OK, &error),
    };
    let db = match RequestDb::begin(&state.db, &principal.claims()).await {
        Ok(db) => db,
        Err(error) => return error_response(StatusCode::OK, &ApiError::from(error)),
    };
    let counter = Arc::new(AtomicUsize::new(0));
    let plan_key = match &batch {
        BatchRequest::Single(request) => Some(PlanKey::new(
            &request.query,
            request.operation_name.as_deref(),
        )),
        BatchRequest::Batch(_) => None,
    };
    if let (Some(key), BatchRequest::Single(request)) = (&plan_key, &batch) {
        let answer = (state.plans).answer(key, &db, &scope, &request.variables, &state.limits);
        match count_statements(counter.clone(), answer).await {
            Ok(Some(answer)) => {
                return match db.finish(End::Discard).await {
                    Ok(()) => plan_response(answer, counter.load(Ordering::Relaxed)),
                    Err(error) => error_response(StatusCode::OK, &ApiError::from(error)),
                };
            }
            // No plan, or not one for this request: the executor answers.
            Ok(None) => {}
            Err(error) => {
                let _ = db.finish(End::Discard).await;
                return error_response(StatusCode::OK, &error);
            }
        }
    }
    let prepare = |request: async_graphql::Request| {
        request
            .data(state.request_context(db.clone(), scope.clone(), principal.clone()))
            .data(batch_loader(db.clone(), scope.clone()))
            .data(state.realtime.clone())
    };
    let batch = match batch {
        BatchRequest::Single(request) => BatchRequest::Single(prepare(request)),
        BatchRequest::Batch(requests) => {
            BatchRequest::Batch(requests.into_iter().map(prepare).collect())
        }
    };
    let response = count_statements(counter.clone(), state.schema.execute_batch(batch)).await;
    let ok = match &response {
        BatchResponse::Single(r) => r.is_ok(),
        BatchResponse::Batch(rs) => rs.iter().all(|r| r.is_ok()),
    };
    if let Err(error) = db.finish(End::commit_if(ok)).await {
        return error_response(StatusCode::OK, &ApiError::from(error));
    }
    if let (true, Some(key)) = (ok, &plan_key) {
        state.plans.learn(key);
    }
    match response {
        BatchResponse::Single(response) => {
            let statements = counter.load(Ordering::Relaxed);
            GraphQLResponse::from(response.extension("sqlStatements", Value::from(statements)))
                .into_response()
        }
        batch => GraphQLResponse::from(batch).into_response(),
    }
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
        "errors": [{ "message": error.to_string(), "extensions": { "code": error.code() } }],
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
