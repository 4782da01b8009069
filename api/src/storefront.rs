//! `POST /events`: a shop's storefront sends its visitors' events, with the shop's public
//! ingest key in `X-Stratix-Ingest-Key` (see `auth::storefront`). The body is
//! `{"events": [...]}`, 1 to 1,000 events, stored by `domains::shopify::events` (the same
//! as `eventsTrack`). CORS is open on this path only: any origin may send events (a
//! storefront runs on the shop's own domains), never with credentials; the other paths
//! keep the configured origins.
//!
//! Answers: 200 `{"stored", "duplicates"}`; 400 `{"userErrors": [{field, message, code}]}`
//! naming each bad event's index and field (nothing is written); 401 for a missing,
//! unknown or uninstalled shop's key; 413 over [`MAX_BODY_BYTES`]; 429 with `Retry-After`
//! when the client's address has spent its throttle bucket (a point a batch).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{Value as JsonValue, json};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::auth::{Principal, storefront};
use crate::db::Access;
use crate::domains::shopify::events::{self, Batch, Tracked};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Scope;

/// The largest body: 1,000 events with their props.
pub const MAX_BODY_BYTES: usize = 5 << 20;

/// `/events`, with its own CORS.
pub fn routes(state: AppState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::HeaderName::from_static(storefront::HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600));
    Router::new()
        .route("/events", post(receive))
        // Throttled by client address, as the webhooks are: a visitor's browser, not the
        // shop, is who sends.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::throttle::guard,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(cors)
        .with_state(state)
}

async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(key) = headers
        .get(storefront::HEADER)
        .and_then(|v| v.to_str().ok())
    else {
        return refusal(
            StatusCode::UNAUTHORIZED,
            "send the shop's X-Stratix-Ingest-Key",
        );
    };
    let shop = match storefront::verify(&state.db, key).await {
        Ok(shop) => shop,
        Err(error @ ApiError::Unauthenticated(_)) => {
            return refusal(StatusCode::UNAUTHORIZED, &error.to_string());
        }
        Err(error) => return failed(&error),
    };
    let Ok(body) = serde_json::from_slice::<JsonValue>(&body) else {
        return refusal(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let Some(list) = body.get("events") else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "the body must be {\"events\": [...]}",
        );
    };
    let batch = match Batch::parse("events", list, Utc::now()) {
        Ok(batch) => batch,
        Err(error) => return user_errors(error),
    };
    match track(&state, Principal::Storefront { shop }, batch).await {
        Ok(tracked) => (
            StatusCode::OK,
            Json(json!({ "stored": tracked.stored, "duplicates": tracked.duplicates })),
        )
            .into_response(),
        Err(error @ (ApiError::Several(_) | ApiError::Refused { .. })) => user_errors(error),
        Err(error) => failed(&error),
    }
}

/// One transaction: the batch is stored whole or not at all.
async fn track(state: &AppState, principal: Principal, batch: Batch) -> ApiResult<Tracked> {
    let request = state.open(principal, Scope::Nobody, Access::Write).await?;
    let tracked = events::track(&request.work(), batch).await;
    request.finish(tracked.is_ok()).await?;
    tracked
}

fn refusal(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

fn failed(error: &ApiError) -> Response {
    tracing::error!(%error, "storing storefront events failed");
    refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
}

/// 400 with each problem as `userErrors` reports it in GraphQL.
fn user_errors(error: ApiError) -> Response {
    let problems = match error {
        ApiError::Several(problems) => problems,
        one => vec![one],
    };
    let entries: Vec<JsonValue> = problems
        .iter()
        .map(|problem| {
            let (field, code, message) = match problem {
                ApiError::Refused {
                    field,
                    code,
                    message,
                } => (field.as_str(), code.name(), message.clone()),
                ApiError::BadUserInput { field, message } => {
                    (field.as_str(), "INVALID", message.clone())
                }
                other => ("", "INVALID", other.to_string()),
            };
            let path: Vec<&str> = field.split('.').filter(|p| !p.is_empty()).collect();
            json!({ "field": path, "message": message, "code": code })
        })
        .collect();
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "userErrors": entries })),
    )
        .into_response()
}
