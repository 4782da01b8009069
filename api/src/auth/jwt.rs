//! User JWTs: HS256 with Supabase-compatible claims (`sub`, `role`, `aud`, `exp`).

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The audience Supabase puts in user tokens.
pub const AUDIENCE: &str = "authenticated";
/// Clock skew tolerated on `exp` / `nbf`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The claims Stratix reads (and writes when it mints a token).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id (`users.id`), or for `service_role` any label.
    pub sub: String,
    /// `authenticated` or `service_role`.
    pub role: String,
    /// Always `authenticated`.
    pub aud: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

/// Signs `claims` with `secret`.
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, ApiError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))
}

/// Verifies an HS256 user token: signature, algorithm, `exp`, `nbf`, `aud`.
pub fn verify(secret: &[u8], token: &str) -> Result<Claims, ApiError> {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    decode::<Claims>(token, &DecodingKey::from_secret(secret), &validation)
        .map(|data| data.claims)
        .map_err(|e| ApiError::Unauthenticated(format!("invalid token: {e}")))
}
