//! Who is asking: credentials in, a [`Principal`] out, and the row [`Scope`] it reads with.
//!
//! Credentials come as `Authorization: Bearer <token>` (a user JWT or a Shopify session
//! token), `x-api-key` or a storefront's `X-Stratix-Ingest-Key`, over HTTP or in a WebSocket's `connection_init` payload. None
//! means anonymous; credentials that do not verify are refused (`UNAUTHENTICATED`), never
//! downgraded to anonymous.

pub mod api_keys;
pub mod integrations;
pub mod jwks;
pub mod jwt;
pub mod passwords;
pub mod shopify;
pub mod storefront;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use entity::shopify::shops;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use serde_json::json;
use uuid::Uuid;

pub use api_keys::KeyScope;

use crate::error::ApiError;
use crate::store::Scope;
use migration::catalog::Role;

/// The keys credentials are checked against.
#[derive(Clone, Default)]
pub struct Keys {
    /// User tokens: `JWT_SECRET` and `JWT_JWKS`.
    pub user: jwt::UserKeys,
    /// Shopify session tokens: `SHOPIFY_API_KEY` / `SHOPIFY_API_SECRET`.
    pub shopify: shopify::ShopifyKeys,
    /// The payment provider's callbacks: `PAYMENTS_WEBHOOK_SECRET` (empty: refused).
    pub payments_webhook: Vec<u8>,
    /// Secrets at rest: `STRATIX_ENCRYPTION_KEY` and the keys it replaced.
    pub encryption: crate::crypto::KeyRing,
}

/// Credentials as presented, not yet checked. Their `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing.
    None,
    /// A bearer token.
    Bearer(String),
    /// An API key.
    ApiKey(String),
    /// A shop's public ingest key (its storefront).
    IngestKey(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::None => "None",
            Self::Bearer(_) => "Bearer(<redacted>)",
            Self::ApiKey(_) => "ApiKey(<redacted>)",
            Self::IngestKey(_) => "IngestKey(<redacted>)",
        })
    }
}

impl Credentials {
    /// From HTTP headers.
    pub fn from_headers(headers: &HeaderMap) -> Result<Self, ApiError> {
        if let Some(key) = headers.get("x-api-key") {
            let key = key
                .to_str()
                .map_err(|_| ApiError::Unauthenticated("x-api-key is not text".to_owned()))?;
            return Ok(Self::ApiKey(key.to_owned()));
        }
        if let Some(key) = headers.get(storefront::HEADER) {
            let key = key.to_str().map_err(|_| {
                ApiError::Unauthenticated("X-Stratix-Ingest-Key is not text".to_owned())
            })?;
            return Ok(Self::IngestKey(key.to_owned()));
        }
        match headers.get(axum::http::header::AUTHORIZATION) {
            None => Ok(Self::None),
            Some(value) => Self::from_authorization(value.to_str().unwrap_or_default()),
        }
    }

    /// From a WebSocket `connection_init` payload: `{"Authorization": "Bearer ..."}`,
    /// `{"token": "..."}` or `{"x-api-key": "..."}` (header names in any case).
    pub fn from_payload(payload: &serde_json::Value) -> Result<Self, ApiError> {
        let Some(object) = payload.as_object() else {
            return Ok(Self::None);
        };
        let get = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str())
        };
        // Compared exactly as sent: a credential with extra characters is another one.
        if let Some(key) = get("x-api-key") {
            return Ok(Self::ApiKey(key.to_owned()));
        }
        if let Some(token) = get("token") {
            return Ok(Self::Bearer(token.to_owned()));
        }
        match get("authorization") {
            Some(value) => Self::from_authorization(value),
            None => Ok(Self::None),
        }
    }

    fn from_authorization(value: &str) -> Result<Self, ApiError> {
        value
            .strip_prefix("Bearer ")
            .map(|token| Self::Bearer(token.to_owned()))
            .ok_or_else(|| {
                ApiError::Unauthenticated("Authorization must be `Bearer <token>`".to_owned())
            })
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// `service_role`: everything.
    Service,
    /// A user (`users.id`), through a JWT (all scopes) or an API key (its scopes).
    User {
        /// `users.id`.
        id: Uuid,
        /// What the credential allows.
        scopes: Vec<KeyScope>,
        /// The API key (`api_keys.id`) the request came with; `None` for a signed-in
        /// session (a JWT).
        key: Option<Uuid>,
    },
    /// A Shopify shop, through a session token.
    Shop {
        /// `shops.id`.
        id: Uuid,
    },
    /// An external integration (`external_integrations.id`), through its API key: it
    /// delivers inbound messages to its distributor and does nothing else.
    Integration {
        /// `external_integrations.id`.
        id: Uuid,
        /// Its distributor.
        distributor: Uuid,
    },
    /// A shop's anonymous storefront, through the shop's public ingest key: it sends
    /// events and gets experiment assignments for that shop, and reads nothing.
    Storefront {
        /// `shops.id`.
        shop: Uuid,
    },
}

impl Principal {
    /// Whether the principal may write (run mutations other than sign-up / sign-in).
    pub fn may_write(&self) -> bool {
        match self {
            Self::Anonymous | Self::Integration { .. } | Self::Storefront { .. } => false,
            Self::Service | Self::Shop { .. } => true,
            Self::User { scopes, .. } => scopes.contains(&KeyScope::Write),
        }
    }

    /// Whether the principal may run the worker operations (claim and finish tasks and
    /// jobs): `service_role`, or an API key with the `WORKER` scope (on its user's rows).
    pub fn may_work(&self) -> bool {
        match self {
            Self::Service => true,
            Self::User { scopes, .. } => scopes.contains(&KeyScope::Worker),
            _ => false,
        }
    }

    /// Whether the principal may deliver inbound messages: `service_role`, or an
    /// integration's key (to its own distributor).
    pub fn may_ingest(&self) -> bool {
        matches!(self, Self::Service | Self::Integration { .. })
    }

    /// Whether the principal may act as a shop's storefront (send events, get experiment
    /// assignments): the storefront's key, or the shop itself.
    pub fn may_track(&self) -> bool {
        matches!(self, Self::Storefront { .. } | Self::Shop { .. })
    }

    /// The user, for a user's principal.
    pub fn user_id(&self) -> Option<Uuid> {
        match self {
            Self::User { id, .. } => Some(*id),
            _ => None,
        }
    }

    /// The claims PostgreSQL's policies read (`request.jwt.claims`).
    pub fn claims(&self) -> serde_json::Value {
        match self {
            Self::Anonymous => json!({ "role": "anon" }),
            Self::Service => json!({ "role": "service_role" }),
            Self::User { id, .. } => json!({ "role": "authenticated", "sub": id }),
            Self::Shop { id } => json!({ "role": "authenticated", "shop_id": id }),
            // No row of its own: what it may do runs on the service's account.
            Self::Integration { .. } => json!({ "role": "anon" }),
            // The shop's rows to the database's policies, so that what it writes stays in
            // its shop; the API's scope lets it read nothing.
            Self::Storefront { shop } => json!({ "role": "authenticated", "shop_id": shop }),
        }
    }
}

/// A verified caller and how long its credentials last.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Who.
    pub principal: Principal,
    /// When the credentials stop being valid (tokens), if they do.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Checks `credentials`. `db` is used with the service's own rights (API keys, shops).
pub async fn authenticate<C: ConnectionTrait>(
    keys: &Keys,
    db: &C,
    credentials: &Credentials,
) -> Result<Authenticated, ApiError> {
    let anonymous = Authenticated {
        principal: Principal::Anonymous,
        expires_at: None,
    };
    match credentials {
        Credentials::None => Ok(anonymous),
        Credentials::ApiKey(key) if integrations::looks_like_key(key) => {
            let (id, distributor) = integrations::verify(db, key).await?;
            Ok(Authenticated {
                principal: Principal::Integration { id, distributor },
                expires_at: None,
            })
        }
        Credentials::IngestKey(key) => Ok(Authenticated {
            principal: Principal::Storefront {
                shop: storefront::verify(db, key).await?,
            },
            expires_at: None,
        }),
        Credentials::ApiKey(key) => {
            let (id, scopes, key) = api_keys::verify(db, key).await?;
            Ok(Authenticated {
                principal: Principal::User {
                    id,
                    scopes,
                    key: Some(key),
                },
                expires_at: None,
            })
        }
        Credentials::Bearer(token) if shopify::looks_like_session_token(token) => {
            let (domain, exp) = shopify::verify(&keys.shopify, token)?;
            let shop = shops::Entity::find()
                .select_only()
                .column(shops::Column::Id)
                .filter(shops::Column::Domain.eq(domain))
                .filter(shops::Column::UninstalledAt.is_null())
                .into_tuple::<Uuid>()
                .one(db)
                .await?
                .ok_or_else(|| ApiError::Unauthenticated("the shop is not installed".to_owned()))?;
            Ok(Authenticated {
                principal: Principal::Shop { id: shop },
                expires_at: DateTime::from_timestamp(exp, 0),
            })
        }
        Credentials::Bearer(token) => {
            let claims = jwt::verify_fresh(&keys.user, token).await?;
            let principal = match claims.role.as_str() {
                "service_role" => Principal::Service,
                "anon" => Principal::Anonymous,
                _ => Principal::User {
                    id: claims
                        .sub
                        .as_deref()
                        .and_then(|sub| Uuid::parse_str(sub).ok())
                        .ok_or_else(|| {
                            ApiError::Unauthenticated("the token's sub is not a user id".to_owned())
                        })?,
                    scopes: vec![KeyScope::Read, KeyScope::Write],
                    key: None,
                },
            };
            Ok(Authenticated {
                principal,
                expires_at: DateTime::from_timestamp(claims.exp, 0),
            })
        }
    }
}

/// The rows `principal` may see: for a user, their own and their distributors'.
pub async fn scope_of<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
) -> Result<Scope, ApiError> {
    use entity::distribution::user_profiles;
    Ok(match principal {
        Principal::Anonymous => Scope::Nobody,
        Principal::Service => Scope::Service,
        Principal::Shop { id } => Scope::Shop { id: *id },
        Principal::Integration { .. } | Principal::Storefront { .. } => Scope::Nobody,
        Principal::User { id, .. } => {
            let memberships = user_profiles::Entity::find()
                .select_only()
                .column(user_profiles::Column::DistributorId)
                .column(user_profiles::Column::Role)
                .filter(user_profiles::Column::UserId.eq(*id))
                .into_tuple::<(Uuid, String)>()
                .all(db)
                .await?;
            Scope::User {
                id: *id,
                distributors: memberships.iter().map(|(d, _)| *d).collect(),
                // A role the catalog does not know reads only (the CHECK allows none).
                roles: memberships
                    .into_iter()
                    .map(|(d, role)| (d, Role::parse(&role).unwrap_or(Role::Viewer)))
                    .collect(),
            }
        }
    })
}
