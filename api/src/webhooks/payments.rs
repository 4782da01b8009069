//! `POST /webhooks/payments`: the payment provider tells of a payment's new state.
//!
//! The body is `{"event": "payment.approved" | "payment.completed" | "payment.failed" |
//! "payment.refunded", "orderId": "..."}`, signed in the `X-Payments-Signature` header
//! (`sha256=` and the hex HMAC-SHA256 of the raw body under `PAYMENTS_WEBHOOK_SECRET`).
//! The move runs as `service_role` in one transaction ([`payments::advance`]): a repeated
//! callback changes nothing and answers 200 again. Answers: 200 with the payment's state,
//! 401 for a bad signature, 400 for a body it cannot read, 404 for an unknown order, 409
//! for a move the payment's state refuses, 503 when no secret is configured.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Principal;
use crate::db::Access;
use crate::domains::billing::payments::{self, PaymentRef, Status};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::Scope;

use super::answer;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "x-payments-signature";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Callback {
    event: String,
    order_id: String,
}

/// The handler.
pub async fn receive(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let secret = &state.keys.payments_webhook;
    if secret.is_empty() {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            "PAYMENTS_WEBHOOK_SECRET is not set",
        );
    }
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !super::signed(secret, &body, signature) {
        return answer(StatusCode::UNAUTHORIZED, "bad or missing signature");
    }
    let Ok(callback) = serde_json::from_slice::<Callback>(&body) else {
        return answer(
            StatusCode::BAD_REQUEST,
            "the body must be {\"event\": ..., \"orderId\": ...}",
        );
    };
    let next = match callback.event.as_str() {
        "payment.approved" => Status::Approved,
        "payment.completed" => Status::Completed,
        "payment.failed" => Status::Failed,
        "payment.refunded" => Status::Refunded,
        other => return answer(StatusCode::BAD_REQUEST, &format!("unknown event {other:?}")),
    };
    let outcome = async {
        let request = state
            .open(Principal::Service, Scope::Service, Access::Write)
            .await?;
        let moved =
            payments::advance(&request.work(), PaymentRef::Order(callback.order_id), next).await;
        request.finish(moved.is_ok()).await?;
        moved
    }
    .await;
    match outcome {
        Ok(id) => (
            StatusCode::OK,
            Json(json!({
                "paymentId": crate::graphql::ids::encode("Payment", id),
                "status": next.as_str(),
            })),
        )
            .into_response(),
        Err(error @ ApiError::NotFound(_)) => answer(StatusCode::NOT_FOUND, &error.to_string()),
        Err(error @ ApiError::Refused { .. }) => answer(StatusCode::CONFLICT, &error.to_string()),
        Err(error) => {
            tracing::error!(%error, "payment callback failed");
            answer(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
