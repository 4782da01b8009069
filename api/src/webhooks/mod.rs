//! Callbacks from outside services, each verified by its signature over the raw body
//! before anything is parsed: a bad or missing signature is 401 and writes nothing.
//!
//! - [`payments`]: the payment provider's `POST /webhooks/payments`.
//! - [`shopify`]: Shopify's `POST /webhooks/shopify`.

pub mod payments;
pub mod shopify;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

/// A refusal (or a plain answer) as JSON: `{"error": message}`.
fn answer(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// Whether `signature` (hex, optionally `sha256=`-prefixed) is the HMAC-SHA256 of `body`
/// under `secret`, compared in constant time. An empty secret verifies nothing.
pub fn signed(secret: &[u8], body: &[u8], signature: &str) -> bool {
    let hex_digest = signature.strip_prefix("sha256=").unwrap_or(signature);
    hex::decode(hex_digest).is_ok_and(|given| verifies(secret, body, &given))
}

/// Whether `digest` is the HMAC-SHA256 of `body` under `secret`, compared in constant
/// time. An empty secret verifies nothing.
pub fn verifies(secret: &[u8], body: &[u8], digest: &[u8]) -> bool {
    !secret.is_empty() && mac(secret, body).is_some_and(|m| m.verify_slice(digest).is_ok())
}

/// The signature [`signed`] accepts for `body` under `secret` (for senders and tests).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(digest(secret, body)))
}

/// The HMAC-SHA256 of `body` under `secret`, which [`verifies`] accepts.
pub fn digest(secret: &[u8], body: &[u8]) -> Vec<u8> {
    mac(secret, body)
        .map(|m| m.finalize().into_bytes().to_vec())
        .unwrap_or_default()
}

fn mac(secret: &[u8], body: &[u8]) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_secrets_signature_over_the_exact_body_verifies() {
        let signature = sign(b"secret", b"{\"a\":1}");
        assert!(signed(b"secret", b"{\"a\":1}", &signature));
        assert!(signed(
            b"secret",
            b"{\"a\":1}",
            &signature["sha256=".len()..]
        ));
        assert!(!signed(b"secret", b"{\"a\":2}", &signature));
        assert!(!signed(b"other", b"{\"a\":1}", &signature));
        assert!(!signed(b"", b"{\"a\":1}", &sign(b"", b"{\"a\":1}")));
        assert!(!signed(b"secret", b"{\"a\":1}", "sha256=zz"));
    }
}
