//! Integration API keys (`ik_...`): an external integration's credential for delivering
//! inbound messages to its own distributor. One key per integration, shown once when
//! issued and stored as its SHA-256; issuing another replaces it, and a `disabled`
//! integration's key is refused.

use entity::distribution::external_integrations;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::api_keys::hash;
use crate::error::{ApiError, ApiResult};

const PREFIX: &str = "ik_";

/// Whether `key` is an integration key (rather than a user's API key).
pub fn looks_like_key(key: &str) -> bool {
    key.starts_with(PREFIX)
}

/// A fresh key: (the secret to show once, its hash to store).
pub fn generate() -> (String, String) {
    let key = format!(
        "{PREFIX}{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    );
    let stored = hash(&key);
    (key, stored)
}

/// The integration and distributor of a presented key; unknown keys and those of
/// disabled integrations are refused alike.
pub async fn verify<C: ConnectionTrait>(db: &C, key: &str) -> ApiResult<(Uuid, Uuid)> {
    external_integrations::Entity::find()
        .select_only()
        .column(external_integrations::Column::Id)
        .column(external_integrations::Column::DistributorId)
        .filter(external_integrations::Column::ApiKeyHash.eq(hash(key)))
        .filter(external_integrations::Column::Status.ne("disabled"))
        .into_tuple::<(Uuid, Uuid)>()
        .one(db)
        .await?
        .ok_or_else(|| ApiError::Unauthenticated("invalid integration key".to_owned()))
}
