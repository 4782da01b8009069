//! Sign-up and sign-in for deployments without Supabase Auth: argon2id hashes, emails
//! normalised to lower case, and one answer for a wrong password or an unknown email.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::Utc;
use entity::accounts::users;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

/// The shortest password accepted.
pub const MIN_PASSWORD: usize = 8;
/// The longest password accepted (argon2 would take anything; this bounds the work).
pub const MAX_PASSWORD: usize = 256;

/// An email address, trimmed and lower-cased, checked for a plausible shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Parses `raw`; `field` names the input in errors.
    pub fn parse(field: &str, raw: &str) -> ApiResult<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid {
            Ok(Self(email))
        } else {
            Err(ApiError::bad_input(field, "is not a valid email address"))
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// Runs argon2 work off the async workers, at most one job per core at a time: each
/// takes tens of milliseconds and about 19 MiB, so a burst of sign-ups queues here instead
/// of stalling every other request or growing memory without bound.
async fn off_the_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    static PERMITS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let permits = PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, usize::from))
    });
    let _permit = permits
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(format!("password work: {e}")))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("password work: {e}")))
}

/// Hashes `password` off the async workers.
async fn hash_off(password: &str) -> ApiResult<String> {
    let password = password.to_owned();
    off_the_workers(move || hash(&password)).await?
}

fn hash(password: &str) -> ApiResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))
}

/// A hash of no one's password, verified against when the email is unknown so that both
/// failures take the same time.
fn decoy() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash("decoy password that matches nothing").unwrap_or_default())
}

fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

fn check_password(password: &str) -> ApiResult<()> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(ApiError::bad_input(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    Ok(())
}

/// Creates a user; the database makes its profile, credits and preferences.
///
/// The password is hashed first, before any statement: the request's transaction (and on
/// SQLite the write lock) opens only afterwards, so concurrent sign-ups never hold
/// connections while hashing, and the losers of a race for one email learn it from the
/// unique key at once (`CONFLICT`, a `TAKEN` user error).
pub async fn sign_up<C: ConnectionTrait>(
    db: &C,
    email: &Email,
    password: &str,
    name: Option<&str>,
) -> ApiResult<users::Model> {
    check_password(password)?;
    if let Some(name) = name
        && name.chars().count() > 255
    {
        return Err(ApiError::bad_input("name", "is longer than 255 characters"));
    }
    // PostgreSQL cannot store it; SQLite is held to the same rule.
    if name.is_some_and(|name| name.contains('\0')) {
        return Err(ApiError::bad_input(
            "name",
            "may not contain the NUL character",
        ));
    }
    let password_hash = hash_off(password).await?;
    let taken = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .is_some();
    if taken {
        return Err(ApiError::Conflict(
            "an account with this email already exists".to_owned(),
        ));
    }
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.as_str().to_owned()),
        name: Set(name.map(str::to_owned)),
        password_hash: Set(Some(password_hash)),
        role: Set("user".to_owned()),
        last_login: Set(Some(now)),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|e| match e.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            ApiError::Conflict("an account with this email already exists".to_owned())
        }
        _ => ApiError::from(e),
    })?;
    Ok(user)
}

/// The user with this email and password; any mismatch is the same `UNAUTHENTICATED`.
pub async fn sign_in<C: ConnectionTrait>(
    db: &C,
    email: &Email,
    password: &str,
) -> ApiResult<users::Model> {
    let refuse = || ApiError::Unauthenticated("wrong email or password".to_owned());
    let user = users::Entity::find()
        .filter(users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy().to_owned());
    let password = password.to_owned();
    let matches = off_the_workers(move || verify(&password, &stored)).await?;
    let user = user.filter(|_| matches).ok_or_else(refuse)?;
    let mut seen: users::ActiveModel = user.into();
    seen.last_login = Set(Some(Utc::now()));
    Ok(seen.update(db).await?)
}
