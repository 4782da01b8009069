//! API keys: `sk_<prefix>_<secret>`, shown once; stored as a SHA-256 hash and a display
//! prefix, with scopes, an optional expiry and revocation.

use chrono::{DateTime, Duration, Utc};
use entity::accounts::api_keys;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// What a key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyScope {
    /// Queries.
    Read,
    /// Mutations.
    Write,
    /// The worker operations (claiming and finishing the user's tasks and jobs), nothing
    /// else.
    Worker,
}

impl KeyScope {
    /// The scope's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Worker => "worker",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "read" => Some(Self::Read),
            "write" => Some(Self::Write),
            "worker" => Some(Self::Worker),
            _ => None,
        }
    }
}

/// How often `last_used_at` is written, so a busy key does not write on every request.
const LAST_USED_GRANULARITY: Duration = Duration::minutes(1);

/// The stored hash of a key.
pub fn hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A fresh key: (the full secret to show once, its display prefix).
pub fn generate() -> (String, String) {
    let prefix = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    (format!("sk_{prefix}_{secret}"), format!("sk_{prefix}"))
}

/// The user, scopes and id of a presented key; revoked, expired and unknown keys are
/// refused.
pub async fn verify<C: ConnectionTrait>(
    db: &C,
    key: &str,
) -> ApiResult<(Uuid, Vec<KeyScope>, Uuid)> {
    let refuse = || ApiError::Unauthenticated("invalid API key".to_owned());
    let found = api_keys::Entity::find()
        .filter(api_keys::Column::KeyHash.eq(hash(key)))
        .one(db)
        .await?
        .ok_or_else(refuse)?;
    let now = Utc::now();
    if found.revoked_at.is_some() || found.expires_at.is_some_and(|at| at <= now) {
        return Err(refuse());
    }
    let scopes = scopes_of(&found.scopes);
    if found
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
    {
        let (user, id) = (found.user_id, found.id);
        let mut touch: api_keys::ActiveModel = found.into();
        touch.last_used_at = Set(Some(now));
        touch.update(db).await?;
        tracing::debug!(api_key.id = %id, user.id = %user, "API key used");
        return Ok((user, scopes, id));
    }
    Ok((found.user_id, scopes, found.id))
}

/// The scopes in a stored `scopes` JSON array.
pub fn scopes_of(json: &serde_json::Value) -> Vec<KeyScope> {
    json.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().and_then(KeyScope::parse))
        .collect()
}

/// A new key for `user`: the stored row and the secret (shown once).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    name: &str,
    scopes: &[KeyScope],
    expires_at: Option<DateTime<Utc>>,
) -> ApiResult<(api_keys::Model, String)> {
    let (secret, prefix) = generate();
    let now = Utc::now();
    let model = api_keys::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(name.to_owned()),
        key_prefix: Set(prefix),
        key_hash: Set(hash(&secret)),
        scopes: Set(serde_json::Value::from(
            scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        )),
        last_used_at: Set(None),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        user_id: Set(user),
    }
    .insert(db)
    .await?;
    Ok((model, secret))
}

/// Revokes `user`'s key `id` (another user's key reads as missing).
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    user: Uuid,
    id: Uuid,
) -> ApiResult<api_keys::Model> {
    let found = api_keys::Entity::find_by_id(id)
        .filter(api_keys::Column::UserId.eq(user))
        .one(db)
        .await?
        .ok_or_else(|| ApiError::NotFound("API key".to_owned()))?;
    if found.revoked_at.is_some() {
        return Ok(found);
    }
    let mut revoked: api_keys::ActiveModel = found.into();
    revoked.revoked_at = Set(Some(Utc::now()));
    Ok(revoked.update(db).await?)
}
