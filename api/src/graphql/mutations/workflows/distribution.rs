//! The distribution domain's workflows (seed 003): distributors, invitations.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputValue, TypeRef};

use super::{Declaration, Input, Returned, declare, int, text};
use crate::auth::passwords::Email;
use crate::domains::distribution::ai::{self, NewResponse};
use crate::domains::distribution::distributors::{self, Created, NewDistributor};
use crate::domains::distribution::integrations::{self, Issued};
use crate::domains::distribution::invitations::{self, Invited, NewInvitation};
use crate::domains::distribution::messages::{self, Inbound, Outbound, Received};
use crate::domains::distribution::orders::{self, Status as OrderStatus};
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
            "externalIntegrationKeyIssue",
            "Issues an external integration's API key (admins), with which its bridge \
             delivers inbound messages to the distributor (`messageReceive` with the key in \
             `x-api-key`); it reads nothing and writes nothing else. Shown this once; \
             issuing again replaces it.",
            Right::Write,
            vec![
                InputValue::new("integrationId", TypeRef::named_nn(TypeRef::ID))
                    .description("The integration's global id."),
            ],
            |input| input.id("integrationId", "ExternalIntegration"),
            |ctx, id| Box::pin(integrations::issue_key(ctx, id)),
            vec![
                Returned::Row(
                    "externalIntegration",
                    "external_integrations",
                    |i: &Issued| Some(i.integration),
                ),
                Returned::Value(
                    "key",
                    TypeRef::STRING,
                    "The key, shown this once: only its hash is stored.",
                    |i: &Issued| Some(GqlValue::from(i.key.clone())),
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
        declare(
            "messageReceive",
            "Stores an inbound message (`service_role`, or an integration's key for its own \
             distributor: the channel providers' bridges): once per external id (a retry \
             returns the stored one), with its customer and open conversation found or made, \
             and the PII in it recorded; `messageReceived` subscribers hear it. An \
             integration's key reads nothing: its payload holds only `duplicate`.",
            Right::Ingest,
            vec![
                InputValue::new("distributorId", TypeRef::named(TypeRef::ID)).description(
                    "The distributor's global id (`service_role`); an integration's key \
                     implies its own.",
                ),
                InputValue::new("channel", TypeRef::named_nn(TypeRef::STRING))
                    .description("`whatsapp`, `sms` or `email`."),
                InputValue::new("externalId", TypeRef::named_nn(TypeRef::STRING))
                    .description("The provider's message id, 1 to 255 characters."),
                InputValue::new("from", TypeRef::named_nn(TypeRef::STRING)).description(
                    "The sender: a phone number (whatsapp, sms) or an email address (email).",
                ),
                text("senderName", "The sender's name, for a new customer."),
                InputValue::new("body", TypeRef::named_nn(TypeRef::STRING))
                    .description("The text, 1 to 10,000 characters."),
                InputValue::new("sentAt", TypeRef::named("DateTime"))
                    .description("When the provider received it; now by default."),
            ],
            |input| {
                let sent_at = input
                    .string("sentAt")?
                    .map(|t| {
                        chrono::DateTime::parse_from_rfc3339(&t)
                            .map(|t| t.to_utc())
                            .map_err(|_| ApiError::bad_input("input.sentAt", "is not a date-time"))
                    })
                    .transpose()?;
                Inbound::parse(
                    match input.get("distributorId") {
                        None => None,
                        Some(_) => Some(input.id("distributorId", "Distributor")?),
                    },
                    &input.string("channel")?.unwrap_or_default(),
                    &input.string("externalId")?.unwrap_or_default(),
                    &input.string("from")?.unwrap_or_default(),
                    input.string("senderName")?.as_deref(),
                    &input.string("body")?.unwrap_or_default(),
                    sent_at,
                )
            },
            |ctx, inbound| Box::pin(messages::receive(ctx, inbound)),
            vec![
                Returned::Row("message", "messages", |r: &Received| Some(r.message)),
                Returned::Row("conversation", "conversations", |r: &Received| {
                    Some(r.conversation)
                }),
                Returned::Value(
                    "duplicate",
                    TypeRef::BOOLEAN,
                    "Whether the message had been stored before: nothing changed.",
                    |r: &Received| Some(GqlValue::from(r.duplicate)),
                ),
            ],
        ),
        declare(
            "messageSend",
            "Records an outbound message in a conversation (members and up), `queued` for the \
             channel's provider.",
            Right::Write,
            vec![
                InputValue::new("conversationId", TypeRef::named_nn(TypeRef::ID))
                    .description("The conversation's global id."),
                InputValue::new("body", TypeRef::named_nn(TypeRef::STRING))
                    .description("The text, 1 to 10,000 characters."),
            ],
            |input| {
                Outbound::parse(
                    input.id("conversationId", "Conversation")?,
                    &input.string("body")?.unwrap_or_default(),
                )
            },
            |ctx, outbound| Box::pin(messages::send(ctx, outbound)),
            vec![Returned::Row("message", "messages", |id: &uuid::Uuid| {
                Some(*id)
            })],
        ),
        declare(
            "conversationMarkRead",
            "Marks a conversation read: its unread count goes back to 0 (members and up).",
            Right::Write,
            vec![
                InputValue::new("conversationId", TypeRef::named_nn(TypeRef::ID))
                    .description("The conversation's global id."),
            ],
            |input| input.id("conversationId", "Conversation"),
            |ctx, conversation| Box::pin(messages::mark_read(ctx, conversation)),
            vec![Returned::Row(
                "conversation",
                "conversations",
                |id: &uuid::Uuid| Some(*id),
            )],
        ),
        declare(
            "aiResponseRecord",
            "Records the AI worker's reading of a message (`service_role`): marks the message \
             processed and adds to the day's `aiUsageMetrics`; once the month's AI cost has \
             reached the distributor's budget, refused with `BUDGET_EXCEEDED`. Crossing the \
             alert threshold and the budget each notify the owners once.",
            Right::Write,
            vec![
                InputValue::new("messageId", TypeRef::named_nn(TypeRef::ID))
                    .description("The message's global id."),
                InputValue::new("extractedData", TypeRef::named("JSON")).description(
                    "What was extracted, a JSON object (`items: [{sku, name, quantity}]` for \
                     an order).",
                ),
                InputValue::new("confidence", TypeRef::named_nn("Decimal")).description("0 to 1."),
                InputValue::new("model", TypeRef::named_nn(TypeRef::STRING))
                    .description("The model, 1 to 100 characters."),
                int("promptTokens", "Tokens in, 0 or more."),
                int("completionTokens", "Tokens out, 0 or more."),
                InputValue::new("cost", TypeRef::named_nn("Decimal"))
                    .description("What the call cost, 0 or more."),
            ],
            |input| {
                NewResponse::parse(
                    input.id("messageId", "Message")?,
                    input.json("extractedData")?,
                    &input.decimal_text("confidence")?,
                    &input.string("model")?.unwrap_or_default(),
                    input.int("promptTokens")?,
                    input.int("completionTokens")?,
                    &input.decimal_text("cost")?,
                )
            },
            |ctx, response| Box::pin(ai::record(ctx, response)),
            vec![Returned::Row(
                "aiResponse",
                "ai_responses",
                |id: &uuid::Uuid| Some(*id),
            )],
        ),
        declare(
            "orderCreateFromAiResponse",
            "Makes the order an AI response extracted (members and up): each item matched to \
             the catalog by SKU, then by name (case and spacing aside), all or nothing; the \
             totals computed from the lines; `needs_review` when the response's confidence is \
             under the distributor's threshold.",
            Right::Write,
            vec![
                InputValue::new("aiResponseId", TypeRef::named_nn(TypeRef::ID))
                    .description("The AI response's global id."),
            ],
            |input| input.id("aiResponseId", "AiResponse"),
            |ctx, response| Box::pin(orders::create_from_ai_response(ctx, response)),
            vec![Returned::Row("order", "orders", |id: &uuid::Uuid| {
                Some(*id)
            })],
        ),
        declare(
            "orderUpdateStatus",
            "Moves an order (members and up): draft | needs_review -> confirmed -> fulfilled \
             -> delivered, or cancelled before it is fulfilled; other moves are \
             `INVALID_TRANSITION`.",
            Right::Write,
            vec![
                InputValue::new("id", TypeRef::named_nn(TypeRef::ID))
                    .description("The order's global id."),
                InputValue::new("status", TypeRef::named_nn(TypeRef::STRING)).description(
                    "`confirmed`, `fulfilled`, `delivered` or `cancelled` (or its current one).",
                ),
            ],
            |input| {
                let status = input.string("status")?.unwrap_or_default();
                Ok((
                    input.id("id", "Order")?,
                    OrderStatus::parse(status.trim()).ok_or_else(|| {
                        ApiError::bad_input(
                            "input.status",
                            "must be one of draft, needs_review, confirmed, fulfilled, \
                             delivered, cancelled",
                        )
                    })?,
                ))
            },
            |ctx, (order, next)| Box::pin(orders::update_status(ctx, order, next)),
            vec![Returned::Row("order", "orders", |id: &uuid::Uuid| {
                Some(*id)
            })],
        ),
    ]
}
