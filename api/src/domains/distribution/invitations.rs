//! Invitations: an admin invites an email address with a role (`userInvitationCreate`);
//! the token is shown once and only its SHA-256 hash is stored; it expires after
//! [`VALID_DAYS`] days. The signed-in user with that email accepts it
//! (`userInvitationAccept`) and becomes a member. A revoked (deleted), expired, used or
//! unknown token, or one for another email, is refused with one and the same answer, so
//! the answer tells a guesser nothing.

use chrono::{Duration, Utc};
use migration::catalog::Role;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::{acting_for, may_grant};
use crate::auth::Principal;
use crate::auth::passwords::Email;
use crate::domains::WriteCtx;
use crate::domains::accounts::activity::{self, Change};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;

/// How long an invitation may be accepted.
pub const VALID_DAYS: i64 = 7;

/// A checked invitation.
#[derive(Clone, Debug)]
pub struct NewInvitation {
    /// The distributor named, if any (else the caller's only one it administers).
    pub distributor: Option<Uuid>,
    /// The invitee.
    pub email: Email,
    /// The role the invitee gets.
    pub role: Role,
}

/// What `userInvitationCreate` made.
#[derive(Clone, Debug)]
pub struct Invited {
    /// `user_invitations.id`.
    pub invitation: Uuid,
    /// The token, shown this once.
    pub token: String,
}

/// The stored hash of `token`.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

/// Invites `input.email` to the distributor with `input.role` (admins; owners alone
/// invite owners).
pub async fn create(ctx: &WriteCtx<'_>, input: NewInvitation) -> ApiResult<Invited> {
    let distributor = acting_for(
        ctx,
        "user_invitations",
        "input.distributorId",
        input.distributor,
    )?;
    may_grant(ctx, distributor, input.role, "input.role")?;
    let id = Uuid::new_v4();
    let token = format!("inv_{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let invited_by = match ctx.principal {
        Principal::User { id, .. } => Some(*id),
        _ => None,
    };
    let mut insert = Query::insert();
    insert
        .into_table("user_invitations")
        .columns([
            "id",
            "email",
            "role",
            "token_hash",
            "invited_by",
            "expires_at",
            "distributor_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(input.email.as_str()),
            Expr::val(input.role.as_str()),
            Expr::val(hash(&token)),
            Expr::val(invited_by),
            Expr::val(Utc::now() + Duration::days(VALID_DAYS)),
            Expr::val(distributor),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("user_invitations", id, Some(distributor)));
    if let Some(user) = invited_by {
        activity::record(
            ctx,
            Change {
                user,
                entity_type: "user_invitation",
                entity: id,
                action: "user_invitation.created",
                from: json!(null),
                to: json!({ "email": input.email.as_str(), "role": input.role.as_str() }),
                details: None,
            },
        )
        .await?;
    }
    Ok(Invited {
        invitation: id,
        token,
    })
}

/// Accepts the invitation `token` for the signed-in user: the membership is made and the
/// invitation is used up, together. Returns the membership (`user_profiles.id`).
pub async fn accept(ctx: &WriteCtx<'_>, token: String) -> ApiResult<Uuid> {
    let Principal::User { id: user, .. } = ctx.principal else {
        return Err(ApiError::Forbidden(
            "an invitation is accepted by the signed-in user it was sent to".to_owned(),
        ));
    };
    let refused = || {
        ApiError::refused(
            "input.token",
            InputCode::Invalid,
            "the invitation is not valid: it may have expired, been revoked or been used, \
             or be for another email address",
        )
    };
    let mut email = Query::select();
    email
        .from("users")
        .column("email")
        .and_where(Expr::col("id").eq(*user));
    let email: String = match ctx.db.query_one(&email).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => return Err(refused()),
    };
    let email = email.trim().to_lowercase();
    let membership = Uuid::new_v4();
    // The invitation belongs to a distributor the user is not yet a member of: the
    // policies hide it from them, so this part runs on the service's account, after the
    // token itself proved the right to it.
    let (invitation, distributor, role) = ctx
        .db
        .as_service(async {
            let mut find = Query::select();
            find.from("user_invitations")
                .columns(["id", "distributor_id", "role", "email"])
                .and_where(Expr::col("token_hash").eq(hash(&token)))
                .and_where(Expr::col("accepted_at").is_null())
                .and_where(Expr::col("expires_at").gt(Utc::now()))
                .lock(LockType::Update);
            let Some(row) = ctx.db.query_one(&find).await? else {
                return Err(refused());
            };
            let invitation: Uuid = row.try_get_by_index(0)?;
            let distributor: Uuid = row.try_get_by_index(1)?;
            let role: String = row.try_get_by_index(2)?;
            let invited: String = row.try_get_by_index(3)?;
            if invited != email {
                return Err(refused());
            }
            let mut member = Query::select();
            member
                .from("user_profiles")
                .column("id")
                .and_where(Expr::col("user_id").eq(*user))
                .and_where(Expr::col("distributor_id").eq(distributor));
            if ctx.db.query_one(&member).await?.is_some() {
                return Err(ApiError::refused(
                    "input.token",
                    InputCode::Taken,
                    "you are already a member of this distributor",
                ));
            }
            let mut insert = Query::insert();
            insert
                .into_table("user_profiles")
                .columns(["id", "user_id", "role", "distributor_id"])
                .values([
                    Expr::val(membership),
                    Expr::val(*user),
                    Expr::val(role.as_str()),
                    Expr::val(distributor),
                ])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            ctx.db.execute(&insert).await?;
            let mut used = Query::update();
            used.table("user_invitations")
                .value("accepted_at", Utc::now())
                .and_where(Expr::col("id").eq(invitation));
            ctx.db.execute(&used).await?;
            Ok((invitation, distributor, role))
        })
        .await?;
    ctx.outbox
        .record(Write::insert("user_profiles", membership, Some(distributor)).key(*user));
    ctx.outbox.record(Write::update(
        "user_invitations",
        invitation,
        Some(distributor),
    ));
    activity::record(
        ctx,
        Change {
            user: *user,
            entity_type: "user_invitation",
            entity: invitation,
            action: "user_invitation.accepted",
            from: json!({ "accepted": false }),
            to: json!({ "accepted": true, "role": role }),
            details: None,
        },
    )
    .await?;
    Ok(membership)
}
