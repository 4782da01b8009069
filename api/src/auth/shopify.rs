//! Shopify session tokens (App Bridge): HS256 signed with the app's API secret, `aud` the
//! app's API key, `dest` the shop's URL and `iss` its `/admin`.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, decode, decode_header, encode};
use serde::Deserialize;

use super::jwt::validation;
use crate::error::ApiError;

/// The app's credentials (`SHOPIFY_API_KEY`, `SHOPIFY_API_SECRET`).
#[derive(Clone, Default)]
pub struct ShopifyKeys {
    /// The API key: the tokens' audience.
    pub api_key: String,
    /// The API secret: the tokens' HS256 key.
    pub api_secret: Vec<u8>,
}

/// Clock skew tolerated on session tokens: Shopify's own libraries allow 10 s.
pub const LEEWAY_SECONDS: u64 = 10;

/// The longest lifetime (`exp - iat`) a session token may have: App Bridge's last one
/// minute, so anything much longer was not made by Shopify for a browser session.
pub const MAX_LIFETIME_SECONDS: i64 = 5 * 60;

#[derive(Debug, Deserialize)]
struct SessionClaims {
    iss: String,
    dest: String,
    exp: i64,
    iat: i64,
}

/// Whether an unverified token looks like a Shopify session token (it has `dest`).
pub fn looks_like_session_token(token: &str) -> bool {
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .is_some_and(|claims| claims.get("dest").is_some())
}

/// Verifies a session token; returns the shop's domain (`x.myshopify.com`) and its expiry.
pub fn verify(keys: &ShopifyKeys, token: &str) -> Result<(String, i64), ApiError> {
    let refuse = |why: &str| ApiError::Unauthenticated(format!("invalid session token: {why}"));
    if keys.api_secret.is_empty() || keys.api_key.is_empty() {
        return Err(refuse("Shopify sessions are not configured"));
    }
    let header = decode_header(token).map_err(|e| refuse(&e.to_string()))?;
    if header.alg != Algorithm::HS256 {
        return Err(refuse("algorithm must be HS256"));
    }
    let mut validation = validation(Algorithm::HS256, &keys.api_key);
    validation.set_required_spec_claims(&["exp", "aud", "iss"]);
    validation.leeway = LEEWAY_SECONDS;
    let claims = decode::<SessionClaims>(
        token,
        &DecodingKey::from_secret(&keys.api_secret),
        &validation,
    )
    .map_err(|e| refuse(&e.to_string()))?
    .claims;
    super::jwt::check_issued(Some(claims.iat), LEEWAY_SECONDS)?;
    if claims.exp - claims.iat > MAX_LIFETIME_SECONDS {
        return Err(refuse("its lifetime is longer than a session token's"));
    }
    let shop = claims
        .dest
        .strip_prefix("https://")
        .filter(|host| host.ends_with(".myshopify.com") && !host.contains('/'))
        .ok_or_else(|| refuse("dest is not a shop"))?;
    if claims.iss != format!("https://{shop}/admin") {
        return Err(refuse("iss and dest name different shops"));
    }
    Ok((shop.to_ascii_lowercase(), claims.exp))
}

/// Mints a session token for `shop` as App Bridge would (for development and scripts).
pub fn mint(
    keys: &ShopifyKeys,
    shop: &str,
    sub: &str,
    expires: DateTime<Utc>,
) -> Result<String, ApiError> {
    if keys.api_secret.is_empty() || keys.api_key.is_empty() {
        return Err(ApiError::Internal(
            "SHOPIFY_API_KEY and SHOPIFY_API_SECRET must be set".to_owned(),
        ));
    }
    let now = Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": format!("https://{shop}/admin"),
        "dest": format!("https://{shop}"),
        "aud": keys.api_key,
        "sub": sub,
        "exp": expires.timestamp(),
        "nbf": now,
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sid": uuid::Uuid::new_v4().to_string(),
    });
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&keys.api_secret),
    )
    .map_err(|e| ApiError::Internal(format!("signing a session token: {e}")))
}
