//! `POST /webhooks/shopify`: Shopify's webhooks, verified before the body is read:
//! `X-Shopify-Hmac-Sha256` must be the base64 HMAC-SHA256 of the raw body under
//! `SHOPIFY_API_SECRET` (compared in constant time), else 401 and nothing is written.
//! `X-Shopify-Topic`, `X-Shopify-Webhook-Id` and `X-Shopify-Shop-Domain` name the delivery;
//! [`webhooks::receive`] applies it once, as `service_role` in one transaction, within
//! Shopify's 5 seconds (no topic does more than a few statements). Answers: 200 (applied,
//! or a duplicate), 400 for a delivery it cannot read or an unknown topic, 401, 404 for a
//! shop that was never installed.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde_json::json;
use uuid::Uuid;

use crate::auth::Principal;
use crate::db::Access;
use crate::domains::shopify::webhooks::{self, Delivery, Received, Topic};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::Scope;

use super::answer;

/// The handler.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let digest = base64::engine::general_purpose::STANDARD
        .decode(header("x-shopify-hmac-sha256"))
        .unwrap_or_default();
    if !super::verifies(&state.keys.shopify.api_secret, &body, &digest) {
        return answer(
            StatusCode::UNAUTHORIZED,
            "bad or missing X-Shopify-Hmac-Sha256",
        );
    }
    let (topic, id, domain) = (
        header("x-shopify-topic"),
        header("x-shopify-webhook-id"),
        header("x-shopify-shop-domain").to_ascii_lowercase(),
    );
    let Some(topic) = Topic::parse(&topic) else {
        return answer(StatusCode::BAD_REQUEST, &format!("unknown topic {topic:?}"));
    };
    if id.is_empty() || id.len() > 255 || domain.is_empty() {
        return answer(
            StatusCode::BAD_REQUEST,
            "X-Shopify-Webhook-Id and X-Shopify-Shop-Domain are required",
        );
    }
    let Ok(payload) = serde_json::from_slice(&body) else {
        return answer(StatusCode::BAD_REQUEST, "the body is not JSON");
    };
    let outcome = async {
        let request = state
            .open(Principal::Service, Scope::Service, Access::Write)
            .await?;
        let applied = async {
            let shop = shop_of(&request, &domain).await?;
            let delivery = Delivery {
                shop,
                domain: domain.clone(),
                id,
                topic,
                payload,
            };
            webhooks::receive(&request.work(), delivery).await
        }
        .await;
        request.finish(applied.is_ok()).await?;
        applied
    }
    .await;
    match outcome {
        Ok(received) => (
            StatusCode::OK,
            Json(json!({ "duplicate": received == Received::Duplicate })),
        )
            .into_response(),
        Err(ApiError::NotFound(_)) if topic == Topic::ShopRedact => {
            // Already gone: what shop/redact asks for holds.
            (StatusCode::OK, Json(json!({ "duplicate": true }))).into_response()
        }
        Err(error @ ApiError::NotFound(_)) => answer(StatusCode::NOT_FOUND, &error.to_string()),
        Err(error @ ApiError::BadUserInput { .. }) => {
            answer(StatusCode::BAD_REQUEST, &error.to_string())
        }
        Err(error) => {
            tracing::error!(%error, "Shopify webhook failed");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn shop_of(request: &crate::request::Opened, domain: &str) -> ApiResult<Uuid> {
    use sea_orm::ConnectionTrait as _;
    let mut select = Query::select();
    select
        .from("shops")
        .column("id")
        .and_where(Expr::col("domain").eq(domain));
    match request.db().query_one(&select).await? {
        Some(row) => Ok(row.try_get_by_index(0)?),
        None => Err(ApiError::NotFound(format!("shop {domain}"))),
    }
}
