//! User JWTs: Supabase-compatible claims (`sub`, `role`, `aud`, `exp`), HS256 with
//! `JWT_SECRET`, or ES256/RS256 verified against a JWKS (Supabase's newer signing keys).
//!
//! The algorithm is pinned per key: an HS256 token is only ever checked with the shared
//! secret, an asymmetric one only with the JWKS key its `kid` names, so `alg: none` and
//! algorithm confusion (an HS256 token "signed" with a public key) are refused.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The audience Supabase puts in user tokens.
pub const AUDIENCE: &str = "authenticated";
/// Clock skew tolerated on `exp` / `nbf` / `iat`, in seconds.
pub const LEEWAY_SECONDS: u64 = 30;

/// The roles a user token may carry (Supabase's): anything else is refused, never read as
/// a user.
pub const ROLES: [&str; 3] = ["authenticated", "service_role", "anon"];

/// A verified user token, as presented.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Verified {
    /// The user's id; absent in Supabase's project keys (`anon`, `service_role`).
    #[serde(default)]
    pub sub: Option<String>,
    /// One of [`ROLES`].
    pub role: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// Issued at, if said.
    #[serde(default)]
    pub iat: Option<i64>,
    /// The audience, if any (checked against [`AUDIENCE`] by the decoder when present).
    #[serde(default)]
    aud: Option<serde_json::Value>,
}

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
    pub jwks: Option<super::jwks::Jwks>,
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

/// Refuses a token issued in the future, beyond `leeway` seconds of clock skew.
pub fn check_issued(iat: Option<i64>, leeway: u64) -> Result<(), ApiError> {
    let now = chrono::Utc::now().timestamp();
    match iat {
        Some(iat) if iat > now.saturating_add_unsigned(leeway) => {
            Err(unauthenticated("it was issued in the future (iat)"))
        }
        _ => Ok(()),
    }
}

/// [`verify`], after fetching the JWKS again when the token names a key it does not hold
/// (a rotated-in key; rate-limited, see [`super::jwks`]).
pub async fn verify_fresh(keys: &UserKeys, token: &str) -> Result<Verified, ApiError> {
    if let (Some(jwks), Ok(header)) = (&keys.jwks, decode_header(token))
        && matches!(header.alg, Algorithm::ES256 | Algorithm::RS256)
        && let Some(kid) = &header.kid
    {
        jwks.refresh_for(kid).await;
    }
    verify(keys, token)
}

/// Verifies a user token against `keys`: its signature, `exp` (required), `nbf`, `iat`
/// and `aud` when present, and its role. A user (`authenticated`) must have a `sub` and
/// the `authenticated` audience; Supabase's project keys (`anon`, `service_role`, with
/// neither `sub` nor `aud`) are accepted as those roles.
pub fn verify(keys: &UserKeys, token: &str) -> Result<Verified, ApiError> {
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
            let jwk = &jwk;
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
    let mut validation = validation(algorithm, AUDIENCE);
    validation.set_required_spec_claims(&["exp"]);
    let verified = decode::<Verified>(token, &key, &validation)
        .map_err(unauthenticated)?
        .claims;
    check_issued(verified.iat, LEEWAY_SECONDS)?;
    if !ROLES.contains(&verified.role.as_str()) {
        return Err(unauthenticated(format!(
            "role {:?} is not accepted",
            verified.role
        )));
    }
    if verified.role == "authenticated" && (verified.sub.is_none() || verified.aud.is_none()) {
        return Err(unauthenticated("a user token needs sub and aud"));
    }
    Ok(verified)
}
