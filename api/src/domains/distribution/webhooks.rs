//! A distributor's webhooks: endpoints (admins manage them; the signing secret is shown
//! once and stored encrypted) and the events they hear. [`emit`] writes one
//! `webhook_deliveries` row per subscribed endpoint in the transaction of the change that
//! caused the event (an outbox: a committed change always has its deliveries, a rolled
//! back one never does); [`super::delivery`] sends them.

use chrono::Utc;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde_json::{Value as Json, json};
use uuid::Uuid;

use super::acting_for;
use crate::crypto::{Column, Secret};
use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// Where an endpoint's signing secret is kept, encrypted.
pub const SIGNING_SECRET: Column = Column {
    table: "webhook_endpoints",
    name: "secret_enc",
};

/// The longest endpoint URL, in characters.
const MAX_URL: usize = 2_048;
/// The longest description, in characters.
const MAX_DESCRIPTION: usize = 500;

/// An event endpoints may subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An order was made (`orderCreateFromAiResponse`).
    OrderCreated,
    /// An order moved (`orderUpdateStatus`).
    OrderStatusChanged,
    /// An inbound message arrived (`messageReceive`).
    MessageReceived,
    /// The month's AI cost crossed the alert threshold or the budget.
    BudgetExceeded,
}

impl Event {
    /// Every event, by name.
    pub const ALL: [(Self, &'static str); 4] = [
        (Self::OrderCreated, "order.created"),
        (Self::OrderStatusChanged, "order.status_changed"),
        (Self::MessageReceived, "message.received"),
        (Self::BudgetExceeded, "budget.exceeded"),
    ];

    /// The event's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("", |(_, name)| name)
    }

    fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(e, _)| *e)
    }
}

/// Events given as input `field`: at least one, each known; duplicates dropped.
pub fn parse_events(field: &str, names: &[String]) -> ApiResult<Vec<Event>> {
    let mut events = Vec::new();
    for name in names {
        let event = Event::parse(name).ok_or_else(|| {
            ApiError::refused(
                field,
                InputCode::Invalid,
                format!(
                    "{name:?} is not an event: {}",
                    Event::ALL.map(|(_, n)| n).join(", ")
                ),
            )
        })?;
        if !events.contains(&event) {
            events.push(event);
        }
    }
    if events.is_empty() {
        return Err(ApiError::refused(
            field,
            InputCode::Blank,
            "subscribe to at least one event",
        ));
    }
    Ok(events)
}

/// An endpoint URL as given (checked against the deployment by [`check_url`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointUrl(String);

/// Checks `text` (input `field`): https to a public host; http only to a loopback
/// address, and only where `allow_loopback` (development and tests). Private, link-local
/// and loopback addresses, and names like `localhost`, are refused otherwise, so a
/// distributor cannot aim the service at its own network.
pub fn check_url(field: &str, text: &str, allow_loopback: bool) -> ApiResult<EndpointUrl> {
    let refused = |why: &str| ApiError::refused(field, InputCode::Invalid, why.to_owned());
    let text = text.trim();
    if text.len() > MAX_URL {
        return Err(ApiError::refused(
            field,
            InputCode::TooLong,
            format!("must be at most {MAX_URL} characters"),
        ));
    }
    let url = reqwest::Url::parse(text).map_err(|_| refused("must be an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("must not carry credentials"));
    }
    let local = match url.host() {
        None => return Err(refused("must name a host")),
        Some(url::Host::Domain(name)) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                Some(true)
            } else if name.ends_with(".local") || name.ends_with(".internal") || !name.contains('.')
            {
                Some(false)
            } else {
                None
            }
        }
        Some(url::Host::Ipv4(ip)) => reach(ip.into()),
        Some(url::Host::Ipv6(ip)) => reach(ip.into()),
    };
    match (url.scheme(), local) {
        ("https" | "http", Some(true)) if allow_loopback => Ok(EndpointUrl(url.to_string())),
        (_, Some(_)) => Err(refused(
            "must not point at a private, link-local or loopback address",
        )),
        ("https", None) => Ok(EndpointUrl(url.to_string())),
        _ => Err(refused("must be https://")),
    }
}

/// Whether an address is loopback (`Some(true)`), otherwise not public (`Some(false)`:
/// private, link-local, shared, unspecified, multicast), or public (`None`).
pub fn reach(ip: std::net::IpAddr) -> Option<bool> {
    match ip {
        std::net::IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            if ip.is_loopback() {
                Some(true)
            } else if ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || ip.is_broadcast()
                || ip.is_multicast()
                || (a == 100 && (64..128).contains(&b))
            {
                Some(false)
            } else {
                None
            }
        }
        std::net::IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            if ip.is_loopback() {
                Some(true)
            } else if ip.is_unspecified()
                || ip.to_ipv4_mapped().is_some()
                || ip.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
            {
                Some(false)
            } else {
                None
            }
        }
    }
}

/// A new endpoint, checked.
#[derive(Clone, Debug)]
pub struct NewEndpoint {
    /// The distributor, when the caller administers several.
    pub distributor: Option<Uuid>,
    /// Where deliveries go (checked by [`check_url`] once the deployment is known).
    pub url: String,
    /// What it hears.
    pub events: Vec<Event>,
    /// For people.
    pub description: Option<String>,
}

/// A new endpoint and its signing secret, shown this once.
#[derive(Clone, Debug)]
pub struct Created {
    /// `webhook_endpoints.id`.
    pub endpoint: Uuid,
    /// `whsec_` and 43 characters of base64url: the HMAC key of `Stratix-Signature`.
    pub secret: Secret,
}

fn description(field: &str, text: Option<String>) -> ApiResult<Option<String>> {
    match text {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(ApiError::refused(
            field,
            InputCode::TooLong,
            format!("must be at most {MAX_DESCRIPTION} characters"),
        )),
        text => Ok(text.filter(|t| !t.trim().is_empty())),
    }
}

impl NewEndpoint {
    /// Checks the input (`input.events`, `input.description`).
    pub fn parse(
        distributor: Option<Uuid>,
        url: String,
        events: &[String],
        text: Option<String>,
    ) -> ApiResult<Self> {
        Ok(Self {
            distributor,
            url,
            events: parse_events("input.events", events)?,
            description: description("input.description", text)?,
        })
    }
}

fn events_json(events: &[Event]) -> Json {
    Json::from(events.iter().map(|e| e.as_str()).collect::<Vec<_>>())
}

/// Makes an endpoint (admins); its signing secret is returned this once.
pub async fn create(ctx: &WriteCtx<'_>, new: NewEndpoint) -> ApiResult<Created> {
    let distributor = acting_for(
        ctx,
        "webhook_endpoints",
        "input.distributorId",
        new.distributor,
    )?;
    let url = check_url("input.url", &new.url, ctx.options.webhooks_allow_loopback)?;
    let secret = Secret::new(format!(
        "whsec_{}",
        base64::Engine::encode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            crate::crypto::random_bytes::<32>()
        )
    ));
    let sealed = ctx
        .encryption
        .encrypt(SIGNING_SECRET, secret.expose().as_bytes())?;
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("webhook_endpoints")
        .columns([
            "id",
            "url",
            "description",
            "secret_enc",
            "events",
            "distributor_id",
        ])
        .values([
            Expr::val(id),
            Expr::val(url.0),
            Expr::val(new.description),
            Expr::val(sealed),
            Expr::val(events_json(&new.events)),
            Expr::val(distributor),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("webhook_endpoints", id, Some(distributor)));
    Ok(Created {
        endpoint: id,
        secret,
    })
}

/// Changes to an endpoint; what is not given stays.
#[derive(Clone, Debug)]
pub struct EndpointChange {
    /// `webhook_endpoints.id`.
    pub endpoint: Uuid,
    /// A new URL.
    pub url: Option<String>,
    /// New events.
    pub events: Option<Vec<Event>>,
    /// A new description (empty clears it).
    pub description: Option<Option<String>>,
    /// Switched on or off: an inactive endpoint gets no new deliveries, and its pending
    /// ones fail.
    pub active: Option<bool>,
}

impl EndpointChange {
    /// Checks the input.
    pub fn parse(
        endpoint: Uuid,
        url: Option<String>,
        events: Option<Vec<String>>,
        text: Option<String>,
        active: Option<bool>,
    ) -> ApiResult<Self> {
        Ok(Self {
            endpoint,
            url,
            events: events
                .map(|e| parse_events("input.events", &e))
                .transpose()?,
            description: text
                .map(|t| description("input.description", Some(t)))
                .transpose()?,
            active,
        })
    }
}

/// The endpoint's distributor, when the caller may write it (admins); `NOT_FOUND` on
/// `input.id` otherwise.
async fn writable(ctx: &WriteCtx<'_>, endpoint: Uuid) -> ApiResult<Uuid> {
    let table = tables().named("webhook_endpoints")?;
    let mut select = Query::select();
    select
        .from(table.name)
        .column("distributor_id")
        .and_where(Expr::col("id").eq(endpoint))
        .cond_where(ctx.scope.write_condition(table)?);
    match ctx.db.query_one(&select).await? {
        Some(row) => Ok(row.try_get_by_index(0)?),
        None => Err(ApiError::refused(
            "input.id",
            InputCode::NotFound,
            "no such webhook endpoint",
        )),
    }
}

/// Changes an endpoint (admins).
pub async fn update(ctx: &WriteCtx<'_>, change: EndpointChange) -> ApiResult<Uuid> {
    let distributor = writable(ctx, change.endpoint).await?;
    let mut update = Query::update();
    update
        .table("webhook_endpoints")
        .value("updated_at", Utc::now())
        .and_where(Expr::col("id").eq(change.endpoint));
    if let Some(url) = &change.url {
        let url = check_url("input.url", url, ctx.options.webhooks_allow_loopback)?;
        update.value("url", url.0);
    }
    if let Some(events) = &change.events {
        update.value("events", events_json(events));
    }
    if let Some(text) = change.description {
        update.value("description", text);
    }
    if let Some(active) = change.active {
        update.value("active", active);
    }
    ctx.db.execute(&update).await?;
    ctx.outbox.record(Write::update(
        "webhook_endpoints",
        change.endpoint,
        Some(distributor),
    ));
    Ok(change.endpoint)
}

/// Deletes an endpoint and its deliveries (admins).
pub async fn delete(ctx: &WriteCtx<'_>, endpoint: Uuid) -> ApiResult<Uuid> {
    let distributor = writable(ctx, endpoint).await?;
    let mut delete = Query::delete();
    delete
        .from_table("webhook_endpoints")
        .and_where(Expr::col("id").eq(endpoint));
    ctx.db.execute(&delete).await?;
    ctx.outbox.record(Write::delete(
        "webhook_endpoints",
        endpoint,
        Some(distributor),
    ));
    Ok(endpoint)
}

/// Queues `event` with `data` for every active endpoint of `distributor` that hears it, in
/// the caller's transaction. The body each receiver gets is
/// `{"id": <event id>, "type": <event>, "created_at": ..., "distributor_id": ..., "data": ...}`;
/// the event id is the same for every endpoint, for receivers to deduplicate. Written with
/// the service's rights: a member's change may cause an event that only admins manage.
pub async fn emit(
    ctx: &WriteCtx<'_>,
    distributor: Uuid,
    event: Event,
    data: Json,
) -> ApiResult<()> {
    ctx.db
        .as_service(async {
            let mut endpoints = Query::select();
            endpoints
                .from("webhook_endpoints")
                .columns(["id", "events"])
                .and_where(Expr::col("distributor_id").eq(distributor))
                .and_where(Expr::col("active").eq(true));
            let mut hearing = Vec::new();
            for row in ctx.db.query_all(&endpoints).await? {
                let id: Uuid = row.try_get_by_index(0)?;
                let events: Json = row.try_get_by_index(1)?;
                let hears = events
                    .as_array()
                    .is_some_and(|list| list.iter().any(|e| e.as_str() == Some(event.as_str())));
                if hears {
                    hearing.push(id);
                }
            }
            if hearing.is_empty() {
                return Ok(());
            }
            let now = Utc::now();
            let event_id = Uuid::new_v4();
            let payload = json!({
                "id": event_id,
                "type": event.as_str(),
                "created_at": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "distributor_id": distributor,
                "data": data,
            });
            let mut insert = Query::insert();
            insert.into_table("webhook_deliveries").columns([
                "id",
                "endpoint_id",
                "event",
                "payload",
                "next_attempt_at",
                "event_id",
                "distributor_id",
            ]);
            let mut ids = Vec::new();
            for endpoint in hearing {
                let id = Uuid::new_v4();
                ids.push(id);
                insert
                    .values([
                        Expr::val(id),
                        Expr::val(endpoint),
                        Expr::val(event.as_str()),
                        Expr::val(payload.clone()),
                        Expr::val(now),
                        Expr::val(event_id),
                        Expr::val(distributor),
                    ])
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            ctx.db.execute(&insert).await?;
            for id in ids {
                ctx.outbox
                    .record(Write::insert("webhook_deliveries", id, Some(distributor)));
            }
            Ok(())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_https_to_public_hosts_unless_loopback_is_allowed() {
        let ok = |url: &str, loopback: bool| check_url("u", url, loopback).is_ok();
        assert!(ok("https://hooks.example.com/stratix", false));
        assert!(!ok("http://hooks.example.com/stratix", false));
        assert!(!ok("ftp://hooks.example.com/", false));
        assert!(!ok("https://user:pw@hooks.example.com/", false));
        for private in [
            "https://10.0.0.5/",
            "https://192.168.1.1/",
            "https://172.16.0.1/",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/",
            "https://[fd00::1]/",
            "https://[fe80::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://0.0.0.0/",
            "https://intranet/",
            "https://db.internal/",
        ] {
            assert!(!ok(private, false), "{private}");
            assert!(!ok(private, true), "{private}");
        }
        for loopback in [
            "http://127.0.0.1:8080/hook",
            "http://localhost/",
            "http://[::1]/",
        ] {
            assert!(!ok(loopback, false), "{loopback}");
            assert!(ok(loopback, true), "{loopback}");
        }
    }

    #[test]
    fn events_are_known_and_at_least_one() {
        let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            parse_events(
                "e",
                &names(&["order.created", "order.created", "budget.exceeded"])
            )
            .unwrap(),
            vec![Event::OrderCreated, Event::BudgetExceeded]
        );
        assert!(parse_events("e", &names(&[])).is_err());
        assert!(parse_events("e", &names(&["order.deleted"])).is_err());
    }
}
