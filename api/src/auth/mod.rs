//! Who is asking: credentials in, a [`Principal`] out, and the row [`Scope`] it reads with.
//!
//! A request without credentials is anonymous; a request with credentials that do not
//! verify is refused (`UNAUTHENTICATED`), never downgraded to anonymous.

pub mod jwt;

use axum::http::HeaderMap;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::Scope;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// `service_role`: everything.
    Service,
    /// A user (`users.id`).
    User(Uuid),
}

/// The secrets credentials are checked against.
#[derive(Clone)]
pub struct Keys {
    /// `JWT_SECRET`.
    pub jwt_secret: Vec<u8>,
}

/// Reads the principal from the request headers (`Authorization: Bearer ...`).
pub fn authenticate(keys: &Keys, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Ok(Principal::Anonymous);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::Unauthenticated("Authorization must be `Bearer <token>`".to_owned())
        })?;
    principal_of(&jwt::verify(&keys.jwt_secret, token.trim())?)
}

fn principal_of(claims: &jwt::Claims) -> Result<Principal, ApiError> {
    match claims.role.as_str() {
        "service_role" => Ok(Principal::Service),
        _ => Uuid::parse_str(&claims.sub)
            .map(Principal::User)
            .map_err(|_| ApiError::Unauthenticated("the token's sub is not a user id".to_owned())),
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
        Principal::User(id) => {
            let distributors = user_profiles::Entity::find()
                .select_only()
                .column(user_profiles::Column::DistributorId)
                .filter(user_profiles::Column::UserId.eq(*id))
                .into_tuple::<Uuid>()
                .all(db)
                .await?;
            Scope::User {
                id: *id,
                distributors,
            }
        }
    })
}
