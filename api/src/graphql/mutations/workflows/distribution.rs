//! The distribution domain's workflows (seed 003): distributors, invitations.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};

use super::{Declaration, Input, Returned, declare, text};
use crate::auth::passwords::Email;
use crate::domains::distribution::distributors::{self, Created, NewDistributor};
use crate::domains::distribution::invitations::{self, Invited, NewInvitation};
use crate::domains::distribution::parse_role;
use crate::error::{ApiError, ApiResult};
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "distributorCreate",
            "Makes a distributor and the signed-in user's `owner` membership of it.",
            Right::Write,
            vec![
                InputValue::new("name", TypeRef::named_nn(TypeRef::STRING))
                    .description("1 to 255 characters."),
                text(
                    "slug",
                    "Lower-case letters, digits and -, unique; made from the name when not given.",
                ),
            ],
            |input| {
                let name = input.string("name")?.unwrap_or_default();
                NewDistributor::parse(&name, input.string("slug")?.as_deref())
            },
            |ctx, new| Box::pin(distributors::create(ctx, new)),
            vec![
                Returned::Row("distributor", "distributors", |c: &Created| {
                    Some(c.distributor)
                }),
                Returned::Row("membership", "user_profiles", |c: &Created| {
                    Some(c.membership)
                }),
            ],
        )
        .rescoped(),
        declare(
            "userInvitationCreate",
            "Invites an email address to a distributor with a role (admins; only owners invite \
             owners). The token is returned this once; it expires in 7 days.",
            Right::Write,
            vec![
                InputValue::new("email", TypeRef::named_nn(TypeRef::STRING))
                    .description("The invitee's address."),
                InputValue::new("role", TypeRef::named_nn(TypeRef::STRING))
                    .description("`viewer`, `member`, `admin` or `owner`."),
                InputValue::new("distributorId", TypeRef::named(TypeRef::ID)).description(
                    "The distributor's global id; needed only by a user who administers \
                     several.",
                ),
            ],
            |input| {
                let email = input.string("email")?.unwrap_or_default();
                let role = input.string("role")?.unwrap_or_default();
                Ok(NewInvitation {
                    distributor: match input.get("distributorId") {
                        None => None,
                        Some(_) => Some(input.id("distributorId", "Distributor")?),
                    },
                    email: Email::parse("input.email", &email)?,
                    role: parse_role("input.role", &role)?,
                })
            },
            |ctx, new| Box::pin(invitations::create(ctx, new)),
            vec![
                Returned::Row("userInvitation", "user_invitations", |i: &Invited| {
                    Some(i.invitation)
                }),
                Returned::Value(
                    "token",
                    TypeRef::STRING,
                    "The invitation token, shown this once: only its hash is stored.",
                    |i: &Invited| Some(GqlValue::from(i.token.clone())),
                ),
            ],
        ),
        declare(
            "userInvitationAccept",
            "Accepts an invitation as the signed-in user, whose email it must be for: makes \
             the membership. An expired, revoked or used invitation is refused.",
            Right::Write,
            vec![
                InputValue::new("token", TypeRef::named_nn(TypeRef::STRING))
                    .description("The token `userInvitationCreate` returned."),
            ],
            |input: &Input<'_>| -> ApiResult<String> {
                input
                    .string("token")?
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| ApiError::bad_input("input.token", "is required"))
            },
            |ctx, token| Box::pin(invitations::accept(ctx, token)),
            vec![Returned::Row(
                "membership",
                "user_profiles",
                |id: &uuid::Uuid| Some(*id),
            )],
        )
        .rescoped(),
    ]
}
