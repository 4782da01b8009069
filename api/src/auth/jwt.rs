//! User JWTs: Supabase-compatible claims (`sub`, `role`, `aud`, `exp`), HS256 with
//! `JWT_SECRET`, or ES256/RS256 verified against a JWKS (Supabase's newer signing keys).
//!
//! The algorithm is pinned per key: an HS256 token is only ever checked with the shared
//! secret, an asymmetric one only with the JWKS key its `kid` names, so `alg: none` and
//! algorithm confusion (an HS256 token "signed" with a public key) are refused.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
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

/// The keys user tokens may be signed with.
#[derive(Clone, Default)]
pub struct UserKeys {
    /// `JWT_SECRET` (HS256).
    pub secret: Vec<u8>,
    /// `JWT_JWKS` (ES256 / RS256 public keys by `kid`).
    pub jwks: Option<JwkSet>,
}

/// Signs `claims` with the HS256 `secret`.
pub fn mint(secret: &[u8], claims: &Claims) -> Result<String, ApiError> {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))
}

fn unauthenticated(reason: impl std::fmt::Display) -> ApiError {
    ApiError::Unauthenticated(format!("invalid token: {reason}"))
}

/// A validation that requires `exp`, `aud` and `sub`, with 30 s of leeway on `exp`/`nbf`.
pub fn validation(algorithm: Algorithm, audience: &str) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "aud", "sub"]);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_nbf = true;
    validation
}

/// Verifies a user token against `keys`.
pub fn verify(keys: &UserKeys, token: &str) -> Result<Claims, ApiError> {
    let header = decode_header(token).map_err(unauthenticated)?;
    let (key, algorithm) = match header.alg {
        Algorithm::HS256 if !keys.secret.is_empty() => {
            (DecodingKey::from_secret(&keys.secret), Algorithm::HS256)
        }
        alg @ (Algorithm::ES256 | Algorithm::RS256) => {
            let jwk = keys
                .jwks
                .as_ref()
                .and_then(|set| header.kid.as_deref().and_then(|kid| set.find(kid)))
                .ok_or_else(|| unauthenticated("no signing key matches the token's kid"))?;
            // The key's own algorithm wins: an RS256 key never verifies an ES256 token.
            let key_alg = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                _ => return Err(unauthenticated("unsupported signing key")),
            };
            if key_alg != alg {
                return Err(unauthenticated(
                    "the token's algorithm does not match its key",
                ));
            }
            (DecodingKey::from_jwk(jwk).map_err(unauthenticated)?, alg)
        }
        other => {
            return Err(unauthenticated(format!(
                "algorithm {other:?} is not accepted"
            )));
        }
    };
    decode::<Claims>(token, &key, &validation(algorithm, AUDIENCE))
        .map(|data| data.claims)
        .map_err(unauthenticated)
}
