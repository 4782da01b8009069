//! The distribution domain (seed 003): distributors, their members and invitations.
//!
//! Tables: `distributors`, `user_profiles` (memberships), `user_invitations`. Every write
//! of the domain, generated or workflow, goes through one rule: the member's role in the
//! row's distributor must reach the table's `write_role` in the catalog
//! (`migration::catalog::Role`: viewer < member < admin < owner), as
//! `Scope::write_condition` / `Scope::may_write` apply it.
//!
//! - [`distributors`]: `distributorCreate` (any signed-in user; they become its owner).
//! - [`invitations`]: `userInvitationCreate` (admins) and `userInvitationAccept` (the
//!   invitee, signed in with the invited email).
//! - [`integrations`]: `externalIntegrationKeyIssue` (admins): an integration's key for
//!   `messageReceive`.
//! - [`messages`], [`pii`], [`ai`], [`orders`]: messages in, PII found, AI responses under a
//!   budget, orders out.
//! - [`audits`]: the data access audit trail.
//! - [`integration_secrets`]: integrations' `config` checked, their secrets stored
//!   encrypted (admins).
//! - [`webhooks`]: endpoints (admins) and the events queued for them with each change;
//!   [`delivery`] sends them, signed, at least once.

pub mod ai;
pub mod audits;
pub mod delivery;
pub mod distributors;
pub mod integration_secrets;
pub mod integrations;
pub mod invitations;
pub mod messages;
pub mod orders;
pub mod pii;
pub mod webhooks;

use migration::catalog::Role;
use uuid::Uuid;

use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::store::Scope;
use crate::tables::tables;

/// The distributor a write of `table` acts for: the one named (`field`), else the
/// caller's only distributor whose `table` it may write. Another distributor's id reads
/// as a missing one; a viewer's (or too low a role's) is forbidden.
pub fn acting_for(
    ctx: &WriteCtx<'_>,
    table: &str,
    field: &str,
    named: Option<Uuid>,
) -> ApiResult<Uuid> {
    let table = tables().named(table)?;
    let distributor = match named {
        Some(id) => id,
        // A member of one distributor acts for it, whatever the role (a too low one is
        // then told so).
        None => match ctx.scope {
            Scope::User { distributors, .. } if distributors.len() == 1 => Some(distributors[0]),
            scope => scope.own_key(table),
        }
        .ok_or_else(|| {
            ApiError::bad_input(
                field,
                "name the distributor: you may write more than one, or none",
            )
        })?,
    };
    if ctx.scope.may_write(table, Some(distributor)) {
        return Ok(distributor);
    }
    match ctx.scope.role_in(distributor) {
        Some(role) => Err(ApiError::Forbidden(format!(
            "a {} may not write {}",
            role.as_str(),
            table.name
        ))),
        None => Err(ApiError::NotFound("distributor".to_owned())),
    }
}

/// Checks the role `role` may be handed out by the caller in `distributor`: only an
/// owner makes owners.
pub fn may_grant(ctx: &WriteCtx<'_>, distributor: Uuid, role: Role, field: &str) -> ApiResult<()> {
    let granter = match ctx.scope {
        Scope::Service => Role::Owner,
        scope => scope.role_in(distributor).unwrap_or(Role::Viewer),
    };
    if role == Role::Owner && granter < Role::Owner {
        return Err(ApiError::bad_input(field, "only an owner may make owners"));
    }
    Ok(())
}

/// A role given as input `field`: `VIEWER`, `MEMBER`, `ADMIN` or `OWNER` (any case).
pub fn parse_role(field: &str, text: &str) -> ApiResult<Role> {
    Role::parse(&text.trim().to_ascii_lowercase())
        .ok_or_else(|| ApiError::bad_input(field, "must be one of viewer, member, admin, owner"))
}
