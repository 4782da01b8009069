//! A shop's public ingest key (`shops.ingest_key`, made when the shop is installed), sent
//! by its storefront in `X-Stratix-Ingest-Key`: it is public (it sits in the theme), so it
//! only lets the anonymous storefront send events and get experiment assignments for its
//! shop. An uninstalled shop's key is refused like an unknown one.

use entity::shopify::shops;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The header a storefront sends its shop's key in.
pub const HEADER: &str = "x-stratix-ingest-key";

/// The installed shop whose key `key` is.
pub async fn verify<C: ConnectionTrait>(db: &C, key: &str) -> ApiResult<Uuid> {
    shops::Entity::find()
        .select_only()
        .column(shops::Column::Id)
        .filter(shops::Column::IngestKey.eq(key))
        .filter(shops::Column::UninstalledAt.is_null())
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .ok_or_else(|| {
            ApiError::Unauthenticated("unknown ingest key, or its shop is uninstalled".to_owned())
        })
}
