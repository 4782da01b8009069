//! Messages: `messageReceive` stores an inbound message once per external id, finding or
//! making its customer and open conversation, and records the PII in it; `messageSend`
//! records an outbound one; `conversationMarkRead` resets the unread count. The database
//! keeps `unread_count` and `last_message_at` (a trigger on `messages`).

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::json;
use uuid::Uuid;

use super::webhooks::{self, Event};
use super::{acting_for, pii};
use crate::auth::Principal;
use crate::auth::passwords::Email;
use crate::domains::{WriteCtx, serialize_on};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::store::Scope;
use crate::tables::tables;

/// The longest body accepted.
pub const MAX_BODY: usize = 10_000;

/// A messaging channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// WhatsApp: the sender is a phone number.
    Whatsapp,
    /// SMS: the sender is a phone number.
    Sms,
    /// Email: the sender is an address.
    Email,
}

impl Channel {
    /// Parses `text` (`whatsapp`, `sms`, `email`, any case) given as `field`.
    pub fn parse(field: &str, text: &str) -> ApiResult<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "whatsapp" => Ok(Self::Whatsapp),
            "sms" => Ok(Self::Sms),
            "email" => Ok(Self::Email),
            _ => Err(ApiError::bad_input(
                field,
                "must be one of whatsapp, sms, email",
            )),
        }
    }

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Sms => "sms",
            Self::Email => "email",
        }
    }
}

/// Who sent an inbound message: a phone number (E.164-like: `+` and 7 to 15 digits)
/// or an email address, as its channel requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// `+` and digits.
    Phone(String),
    /// A normalised address.
    Email(String),
}

impl Sender {
    /// Checks `text` for `channel`, given as `field`.
    pub fn parse(field: &str, channel: Channel, text: &str) -> ApiResult<Self> {
        match channel {
            Channel::Email => Ok(Self::Email(Email::parse(field, text)?.as_str().to_owned())),
            Channel::Whatsapp | Channel::Sms => {
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                let shape_ok = text
                    .trim()
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-().".contains(c));
                if !shape_ok || !(7..=15).contains(&digits.len()) {
                    return Err(ApiError::bad_input(
                        field,
                        "must be a phone number of 7 to 15 digits",
                    ));
                }
                Ok(Self::Phone(format!("+{digits}")))
            }
        }
    }
}

/// A body: at most [`MAX_BODY`] characters, not blank.
fn body(field: &str, text: &str) -> ApiResult<String> {
    if text.trim().is_empty() || text.chars().count() > MAX_BODY {
        return Err(ApiError::bad_input(
            field,
            format!("must be 1 to {MAX_BODY} characters"),
        ));
    }
    Ok(text.to_owned())
}

/// A checked inbound message.
#[derive(Clone, Debug)]
pub struct Inbound {
    /// The distributor it came to (`service_role` names it).
    pub distributor: Option<Uuid>,
    /// Its channel.
    pub channel: Channel,
    /// The provider's message id.
    pub external_id: String,
    /// Who sent it.
    pub from: Sender,
    /// The sender's name, for a new customer.
    pub sender_name: Option<String>,
    /// The text.
    pub body: String,
    /// When the provider received it (now when not given).
    pub sent_at: Option<DateTime<Utc>>,
}

impl Inbound {
    /// Checks the parts given as `input.<field>`.
    pub fn parse(
        distributor: Option<Uuid>,
        channel: &str,
        external_id: &str,
        from: &str,
        sender_name: Option<&str>,
        text: &str,
        sent_at: Option<DateTime<Utc>>,
    ) -> ApiResult<Self> {
        let channel = Channel::parse("input.channel", channel)?;
        let external_id = external_id.trim();
        if external_id.is_empty() || external_id.len() > 255 {
            return Err(ApiError::bad_input(
                "input.externalId",
                "must be 1 to 255 characters",
            ));
        }
        Ok(Self {
            distributor,
            channel,
            external_id: external_id.to_owned(),
            from: Sender::parse("input.from", channel, from)?,
            sender_name: sender_name
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(|n| n.chars().take(255).collect()),
            body: body("input.body", text)?,
            sent_at,
        })
    }
}

/// What `messageReceive` did.
#[derive(Clone, Copy, Debug)]
pub struct Received {
    /// The message (`messages.id`), new or stored before under the same external id.
    pub message: Uuid,
    /// Its conversation.
    pub conversation: Uuid,
    /// Whether it had been stored before (a provider's retry): nothing changed.
    pub duplicate: bool,
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// Stores an inbound message: from `service_role`, for the distributor it names, or from
/// an integration's key, for the integration's own distributor (naming another reads as
/// a missing one). An integration has no rows of its own: its message is stored on the
/// service's account, in the request's transaction.
pub async fn receive(ctx: &WriteCtx<'_>, mut input: Inbound) -> ApiResult<Received> {
    match *ctx.principal {
        Principal::Service => receive_as_service(ctx, input).await,
        Principal::Integration { distributor, .. } => {
            if input.distributor.is_some_and(|named| named != distributor) {
                return Err(ApiError::refused(
                    "input.distributorId",
                    InputCode::NotFound,
                    "no such distributor",
                ));
            }
            input.distributor = Some(distributor);
            let (principal, scope) = (Principal::Service, Scope::Service);
            let service = WriteCtx {
                principal: &principal,
                scope: &scope,
                ..*ctx
            };
            ctx.db.as_service(receive_as_service(&service, input)).await
        }
        _ => Err(ApiError::Forbidden(
            "inbound messages come from service_role or an integration's key".to_owned(),
        )),
    }
}

async fn receive_as_service(ctx: &WriteCtx<'_>, input: Inbound) -> ApiResult<Received> {
    let distributor = acting_for(ctx, "messages", "input.distributorId", input.distributor)?;
    let channel = input.channel.as_str();
    if let Some((message, conversation)) =
        stored(ctx, distributor, channel, &input.external_id).await?
    {
        return Ok(Received {
            message,
            conversation,
            duplicate: true,
        });
    }
    // Two first messages from one new sender make one customer and one conversation.
    let sender = match &input.from {
        Sender::Phone(address) | Sender::Email(address) => address,
    };
    serialize_on(ctx, &format!("stratix_sender:{distributor}:{sender}")).await?;
    let customer = customer_of(ctx, distributor, &input).await?;
    let conversation = open_conversation(ctx, distributor, customer, channel).await?;
    let found = pii::detect(&input.body);
    let message = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("messages")
        .columns([
            "id",
            "conversation_id",
            "customer_id",
            "direction",
            "channel",
            "body",
            "body_redacted",
            "status",
            "external_id",
            "sent_at",
            "distributor_id",
        ])
        .values([
            Expr::val(message),
            Expr::val(conversation),
            Expr::val(customer),
            Expr::val("inbound"),
            Expr::val(channel),
            Expr::val(input.body.as_str()),
            Expr::val(pii::redact(&input.body, &found)),
            Expr::val("received"),
            Expr::val(input.external_id.as_str()),
            Expr::val(input.sent_at.unwrap_or_else(Utc::now)),
            Expr::val(distributor),
        ])
        .map_err(internal)?
        // A concurrent delivery of the same message got there first: keep theirs.
        .on_conflict(
            OnConflict::columns(["distributor_id", "channel", "external_id"])
                .do_nothing()
                .to_owned(),
        );
    if ctx.db.execute(&insert).await?.rows_affected() == 0 {
        let (message, conversation) = stored(ctx, distributor, channel, &input.external_id)
            .await?
            .ok_or_else(|| ApiError::Internal("a conflicting message vanished".to_owned()))?;
        return Ok(Received {
            message,
            conversation,
            duplicate: true,
        });
    }
    ctx.outbox
        .record(Write::insert("messages", message, Some(distributor)).key(conversation));
    ctx.outbox.record(Write::update(
        "conversations",
        conversation,
        Some(distributor),
    ));
    record_pii(ctx, distributor, message, &found).await?;
    let data = json!({
        "message_id": message,
        "conversation_id": conversation,
        "customer_id": customer,
        "channel": channel,
        "external_id": input.external_id,
        "body_redacted": pii::redact(&input.body, &found),
    });
    webhooks::emit(ctx, distributor, Event::MessageReceived, data).await?;
    Ok(Received {
        message,
        conversation,
        duplicate: false,
    })
}

/// The message stored under this external id, and its conversation.
async fn stored(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    channel: &str,
    external_id: &str,
) -> ApiResult<Option<(Uuid, Uuid)>> {
    let mut find = Query::select();
    find.from("messages")
        .columns(["id", "conversation_id"])
        .and_where(Expr::col("distributor_id").eq(distributor))
        .and_where(Expr::col("channel").eq(channel))
        .and_where(Expr::col("external_id").eq(external_id));
    Ok(match ctx.db.query_one(&find).await? {
        Some(row) => Some((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
        None => None,
    })
}

/// The customer the sender is (by WhatsApp id or phone, or by email), made if new.
async fn customer_of(ctx: &WriteCtx<'_>, distributor: Uuid, input: &Inbound) -> ApiResult<Uuid> {
    let mut find = Query::select();
    find.from("customers")
        .column("id")
        .and_where(Expr::col("distributor_id").eq(distributor))
        .order_by("created_at", Order::Asc)
        .limit(1);
    let (address, columns) = match &input.from {
        Sender::Phone(phone) if input.channel == Channel::Whatsapp => {
            find.and_where(
                Expr::col("whatsapp_id")
                    .eq(phone.as_str())
                    .or(Expr::col("phone").eq(phone.as_str())),
            );
            (phone, vec!["whatsapp_id", "phone"])
        }
        Sender::Phone(phone) => {
            find.and_where(Expr::col("phone").eq(phone.as_str()));
            (phone, vec!["phone"])
        }
        Sender::Email(email) => {
            find.and_where(Expr::col("email").eq(email.as_str()));
            (email, vec!["email"])
        }
    };
    if let Some(row) = ctx.db.query_one(&find).await? {
        return Ok(row.try_get_by_index(0)?);
    }
    let id = Uuid::new_v4();
    let name = input.sender_name.clone().unwrap_or_else(|| address.clone());
    let mut insert = Query::insert();
    let mut values = vec![Expr::val(id), Expr::val(name), Expr::val(distributor)];
    values.extend(columns.iter().map(|_| Expr::val(address.as_str())));
    insert
        .into_table("customers")
        .columns(["id", "name", "distributor_id"].into_iter().chain(columns))
        .values(values)
        .map_err(internal)?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("customers", id, Some(distributor)));
    Ok(id)
}

/// The customer's open conversation on `channel`, made if there is none.
async fn open_conversation(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    customer: Uuid,
    channel: &str,
) -> ApiResult<Uuid> {
    let mut find = Query::select();
    find.from("conversations")
        .column("id")
        .and_where(Expr::col("customer_id").eq(customer))
        .and_where(Expr::col("channel").eq(channel))
        .and_where(Expr::col("status").eq("open"))
        .order_by("created_at", Order::Desc)
        .limit(1);
    if let Some(row) = ctx.db.query_one(&find).await? {
        return Ok(row.try_get_by_index(0)?);
    }
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("conversations")
        .columns(["id", "customer_id", "channel", "distributor_id"])
        .values([
            Expr::val(id),
            Expr::val(customer),
            Expr::val(channel),
            Expr::val(distributor),
        ])
        .map_err(internal)?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("conversations", id, Some(distributor)));
    Ok(id)
}

/// One `pii_detections` row per finding.
async fn record_pii(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    message: Uuid,
    found: &[pii::Found],
) -> ApiResult<()> {
    if found.is_empty() {
        return Ok(());
    }
    let mut insert = Query::insert();
    insert.into_table("pii_detections").columns([
        "id",
        "message_id",
        "kind",
        "location",
        "confidence",
        "redacted",
        "distributor_id",
    ]);
    let mut ids = Vec::new();
    for f in found {
        let id = Uuid::new_v4();
        ids.push(id);
        let confidence = rust_decimal::Decimal::from_f64_retain(f.confidence)
            .unwrap_or_default()
            .round_dp(3);
        insert
            .values([
                Expr::val(id),
                Expr::val(message),
                Expr::val(f.kind.as_str()),
                Expr::val(json!({ "field": "body", "start": f.start, "end": f.end })),
                Expr::val(confidence),
                Expr::val(true),
                Expr::val(distributor),
            ])
            .map_err(internal)?;
    }
    ctx.db.execute(&insert).await?;
    for id in ids {
        ctx.outbox
            .record(Write::insert("pii_detections", id, Some(distributor)));
    }
    Ok(())
}

/// A checked outbound message.
#[derive(Clone, Debug)]
pub struct Outbound {
    /// The conversation it goes to.
    pub conversation: Uuid,
    /// The text.
    pub body: String,
}

impl Outbound {
    /// Checks `input.conversationId`'s decoded id and `input.body`.
    pub fn parse(conversation: Uuid, text: &str) -> ApiResult<Self> {
        Ok(Self {
            conversation,
            body: body("input.body", text)?,
        })
    }
}

/// The conversation `id` as the caller may write it: (distributor, customer, channel);
/// another distributor's reads as missing.
async fn writable_conversation(ctx: &WriteCtx<'_>, id: Uuid) -> ApiResult<(Uuid, Uuid, String)> {
    let table = tables().named("conversations")?;
    let mut find = Query::select();
    find.from(table.name)
        .columns(["distributor_id", "customer_id", "channel"])
        .and_where(Expr::col("id").eq(id))
        .cond_where(ctx.scope.write_condition(table)?);
    match ctx.db.query_one(&find).await? {
        Some(row) => Ok((
            row.try_get_by_index(0)?,
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
        )),
        None => Err(ApiError::refused(
            "input.conversationId",
            InputCode::NotFound,
            "no such conversation",
        )),
    }
}

/// Records an outbound message in a conversation (members and up), `queued` for the
/// channel's provider to send.
pub async fn send(ctx: &WriteCtx<'_>, input: Outbound) -> ApiResult<Uuid> {
    let (distributor, customer, channel) = writable_conversation(ctx, input.conversation).await?;
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("messages")
        .columns([
            "id",
            "conversation_id",
            "customer_id",
            "direction",
            "channel",
            "body",
            "body_redacted",
            "status",
            "distributor_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(input.conversation),
            Expr::val(customer),
            Expr::val("outbound"),
            Expr::val(channel),
            Expr::val(input.body.as_str()),
            Expr::val(pii::redact(&input.body, &pii::detect(&input.body))),
            Expr::val("queued"),
            Expr::val(distributor),
        ])
        .map_err(internal)?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("messages", id, Some(distributor)).key(input.conversation));
    ctx.outbox.record(Write::update(
        "conversations",
        input.conversation,
        Some(distributor),
    ));
    Ok(id)
}

/// Marks a conversation read: its unread count goes back to 0 (members and up).
pub async fn mark_read(ctx: &WriteCtx<'_>, conversation: Uuid) -> ApiResult<Uuid> {
    let (distributor, _, _) = writable_conversation(ctx, conversation).await?;
    let mut update = Query::update();
    update
        .table("conversations")
        .value("unread_count", 0)
        .and_where(Expr::col("id").eq(conversation));
    ctx.db.execute(&update).await?;
    ctx.outbox.record(Write::update(
        "conversations",
        conversation,
        Some(distributor),
    ));
    Ok(conversation)
}
