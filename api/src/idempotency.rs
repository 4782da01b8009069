//! Safe retries: a mutation request sent with an `Idempotency-Key` header stores its answer
//! per principal for 24 hours; the same key again returns that answer without running
//! anything, and the same key with another request is a `CONFLICT`.
//!
//! The key is claimed inside the request's own transaction, so it is stored exactly when
//! the request's writes are: a request that rolls back leaves no key, and its retry runs
//! again. Concurrent requests with one key wait on the first (PostgreSQL: the primary key's
//! row lock; SQLite: the write lock each mutation request holds), then replay its answer.

use chrono::{Duration, Utc};
use migration::IDEMPOTENCY_KEYS;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ConnectionTrait, Value};
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};

/// The header.
pub const HEADER: &str = "idempotency-key";

/// How long an answer is kept.
pub const RETENTION_HOURS: i64 = 24;

/// The longest key accepted.
pub const MAX_KEY: usize = 255;

/// A request's claim on its key.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key is new (or expired): run the request, then [`store`] its answer.
    Run,
    /// The key answered this request before: here is the answer.
    Replay(String),
}

/// The key as a client sent it, checked.
pub fn parse_key(value: &axum::http::HeaderValue) -> ApiResult<String> {
    let key = value
        .to_str()
        .map_err(|_| ApiError::bad_input(HEADER, "must be text"))?
        .trim();
    if key.is_empty() || key.len() > MAX_KEY {
        return Err(ApiError::bad_input(
            HEADER,
            format!("must be 1 to {MAX_KEY} characters"),
        ));
    }
    Ok(key.to_owned())
}

/// Who the key belongs to.
fn owner(principal: &Principal) -> String {
    match principal {
        Principal::Anonymous => "anon".to_owned(),
        Principal::Service => "service".to_owned(),
        Principal::User { id, .. } => format!("user:{id}"),
        Principal::Shop { id } => format!("shop:{id}"),
        Principal::Integration { id, .. } => format!("integration:{id}"),
        Principal::Storefront { shop } => format!("storefront:{shop}"),
    }
}

/// A digest of what the request asks (document, operation, variables).
pub fn request_hash(request: &async_graphql::Request) -> String {
    let mut hash = Sha256::new();
    hash.update(request.query.as_bytes());
    hash.update([0]);
    hash.update(
        request
            .operation_name
            .as_deref()
            .unwrap_or_default()
            .as_bytes(),
    );
    hash.update([0]);
    hash.update(
        serde_json::to_vec(&request.variables)
            .unwrap_or_default()
            .as_slice(),
    );
    hex::encode(hash.finalize())
}

/// Claims `key` for `principal`'s request with digest `hash`, in the request's transaction.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    key: &str,
    hash: &str,
) -> ApiResult<Claim> {
    let owner = owner(principal);
    let now = Utc::now();
    let expired = now - Duration::hours(RETENTION_HOURS);
    let mut insert = Query::insert();
    insert
        .into_table(IDEMPOTENCY_KEYS)
        .columns(["principal", "key", "request_hash", "created_at"])
        .values([
            Expr::val(owner.clone()),
            Expr::val(key.to_owned()),
            Expr::val(hash.to_owned()),
            Expr::val(now),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        // An expired answer is forgotten: the key starts over.
        .on_conflict(
            OnConflict::columns(["principal", "key"])
                .update_columns(["request_hash", "created_at"])
                .value("response", Expr::val(Value::String(None)))
                .action_and_where(
                    Expr::col((IDEMPOTENCY_KEYS, "created_at")).lt(Expr::val(expired)),
                )
                .to_owned(),
        );
    if db.execute(&insert).await?.rows_affected() > 0 {
        return Ok(Claim::Run);
    }
    let mut select = Query::select();
    select
        .from(IDEMPOTENCY_KEYS)
        .columns(["request_hash", "response"])
        .and_where(Expr::col("principal").eq(owner))
        .and_where(Expr::col("key").eq(key.to_owned()));
    let row = db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::Internal("idempotency key vanished".to_owned()))?;
    let stored_hash: String = row.try_get_by_index(0).map_err(ApiError::from)?;
    let response: Option<String> = row.try_get_by_index(1).map_err(ApiError::from)?;
    match response {
        Some(response) if stored_hash == hash => Ok(Claim::Replay(response)),
        Some(_) => Err(ApiError::Conflict(
            "this Idempotency-Key was used for another request".to_owned(),
        )),
        None => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still running".to_owned(),
        )),
    }
}

/// Stores the answer to the request that claimed `key`, and forgets expired answers.
pub async fn store<C: ConnectionTrait>(
    db: &C,
    principal: &Principal,
    key: &str,
    response: &str,
) -> ApiResult<()> {
    let mut update = Query::update();
    update
        .table(IDEMPOTENCY_KEYS)
        .value("response", response.to_owned())
        .and_where(Expr::col("principal").eq(owner(principal)))
        .and_where(Expr::col("key").eq(key.to_owned()));
    db.execute(&update).await?;
    let mut prune = Query::delete();
    prune.from_table(IDEMPOTENCY_KEYS).and_where(
        Expr::col("created_at").lt(Expr::val(Utc::now() - Duration::hours(RETENTION_HOURS))),
    );
    db.execute(&prune).await?;
    Ok(())
}
