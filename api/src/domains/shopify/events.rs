//! Storefront events (seed 004): batches of 1 to [`MAX_BATCH`] from a shop's anonymous
//! storefront (its ingest key) or the shop itself, through `POST /events` and
//! `eventsTrack`. A batch with any bad event is refused whole, each problem named by its
//! index and field, and nothing is written; a good one is one multi-row insert.
//!
//! Retries are safe: an event's row id is derived from its shop, its client id and its
//! `ts` ([`row_id`]), and the insert skips ids already stored. On PostgreSQL `events` is
//! partitioned by `ts`, so a unique key must hold `ts`: the key `(id, ts)` is that key, and
//! since `ts` is part of the derived id, SQLite's key `id` dedupes exactly the same events.
//! A retry sends the event as it was (same id, same `ts`).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, SubsecRound as _, Utc};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use serde_json::{Map, Value as Json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::sequence;
use crate::auth::Principal;
use crate::domains::WriteCtx;
use crate::domains::batch::{self, Problems};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::graphql::ids;

/// The most events in one batch.
pub const MAX_BATCH: usize = 1_000;
/// The longest id, visitor, session, product or variant text, in characters.
const MAX_TEXT: usize = 128;
/// The largest `props`, serialized.
const MAX_PROPS_BYTES: usize = 4_096;
/// How old an event may be: a retry comes within days, and older months may be gone.
const MAX_AGE_DAYS: i64 = 7;
/// How far ahead of the server's clock an event's `ts` may be (clients' clocks drift).
const MAX_AHEAD_HOURS: i64 = 24;

/// One checked event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The client's id of the event (retries repeat it).
    pub client_id: String,
    /// What happened: lower-case letters, digits and `_`, starting with a letter.
    pub event_type: String,
    /// When it happened, to the microsecond (what both databases store).
    pub ts: DateTime<Utc>,
    /// The anonymous visitor.
    pub anon_id: String,
    /// The visitor's session ("" when the storefront has none).
    pub session_id: String,
    /// Details, an object.
    pub props: Json,
    /// Shopify's product id, if the event is about one.
    pub product_id: Option<String>,
    /// The experiment the event belongs to (checked to be the shop's when tracked).
    pub experiment: Option<Uuid>,
    /// The experiment's variant the visitor saw (one of the experiment's).
    pub variant: Option<String>,
}

/// A checked batch, and the input path its problems are reported under.
#[derive(Clone, Debug)]
pub struct Batch {
    at: String,
    events: Vec<Event>,
}

/// What a batch stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracked {
    /// Events stored now.
    pub stored: u64,
    /// Events already stored (retries, or repeated within the batch).
    pub duplicates: u64,
}

impl Batch {
    /// Checks `events` (a list of event objects, as JSON) given at input path `at`
    /// (`events`, `input.events`) against the server's clock `now`; every problem found is
    /// reported.
    pub fn parse(at: &str, events: &Json, now: DateTime<Utc>) -> ApiResult<Self> {
        let list = batch::items(at, events, MAX_BATCH, "events")?;
        let mut problems = Problems::new(at);
        let mut parsed = Vec::with_capacity(list.len());
        for (index, value) in list.iter().enumerate() {
            if let Some(event) = event(&mut problems, index, value, now) {
                parsed.push((index, event));
            }
        }
        // The same id twice must be the same event: its id is all a retry has to go by.
        let mut seen: HashMap<&str, (usize, DateTime<Utc>)> = HashMap::new();
        for (index, event) in &parsed {
            match seen.get(event.client_id.as_str()) {
                Some((first, ts)) if *ts != event.ts => problems.add(
                    *index,
                    "ts",
                    InputCode::Invalid,
                    format!("event {first} has the same id with another ts"),
                ),
                Some(_) => {}
                None => {
                    seen.insert(&event.client_id, (*index, event.ts));
                }
            }
        }
        problems.into_result()?;
        Ok(Self {
            at: at.to_owned(),
            events: parsed.into_iter().map(|(_, event)| event).collect(),
        })
    }

    /// How many events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

const FIELDS: [&str; 9] = [
    "id",
    "type",
    "ts",
    "anonId",
    "sessionId",
    "props",
    "productId",
    "experimentId",
    "variant",
];

/// Event `index`, or `None` with its problems added.
fn event(
    problems: &mut Problems<'_>,
    index: usize,
    value: &Json,
    now: DateTime<Utc>,
) -> Option<Event> {
    let Some(object) = value.as_object() else {
        problems.add_item(index, InputCode::Invalid, "must be an event object");
        return None;
    };
    let before = problems.count();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.add(index, key, InputCode::Invalid, "is not a field of an event");
        }
    }
    let mut text = |field: &str, required: bool| -> Option<String> {
        match object.get(field) {
            None | Some(Json::Null) if required => {
                problems.add(index, field, InputCode::Blank, "is required");
                None
            }
            None | Some(Json::Null) => None,
            Some(Json::String(s)) if required && s.is_empty() => {
                problems.add(index, field, InputCode::Blank, "must not be empty");
                None
            }
            Some(Json::String(s)) if s.chars().count() > MAX_TEXT => {
                let message = format!("must be at most {MAX_TEXT} characters");
                problems.add(index, field, InputCode::TooLong, message);
                None
            }
            Some(Json::String(s)) => Some(s.clone()),
            Some(_) => {
                problems.add(index, field, InputCode::Invalid, "must be a string");
                None
            }
        }
    };
    let client_id = text("id", true);
    let event_type = text("type", true);
    let ts_text = text("ts", true);
    let anon_id = text("anonId", true);
    let session_id = text("sessionId", false).unwrap_or_default();
    let product_id = text("productId", false);
    let experiment_gid = text("experimentId", false);
    let variant = text("variant", false);
    if let Some(kind) = &event_type
        && !is_event_type(kind)
    {
        problems.add(
            index,
            "type",
            InputCode::Invalid,
            "must be lower-case letters, digits and _, starting with a letter (`add_to_cart`)",
        );
    }
    let ts = ts_text.and_then(|text| match DateTime::parse_from_rfc3339(&text) {
        Ok(ts) => {
            let ts = ts.with_timezone(&Utc).trunc_subsecs(6);
            if ts < now - Duration::days(MAX_AGE_DAYS)
                || ts > now + Duration::hours(MAX_AHEAD_HOURS)
            {
                let message = format!(
                    "must be within the last {MAX_AGE_DAYS} days (and at most \
                     {MAX_AHEAD_HOURS} hours ahead of the server's clock)"
                );
                problems.add(index, "ts", InputCode::Invalid, message);
                None
            } else {
                Some(ts)
            }
        }
        Err(_) => {
            let message = "must be an RFC 3339 time, like 2026-12-07T10:00:00.123Z";
            problems.add(index, "ts", InputCode::Invalid, message);
            None
        }
    });
    let props = match object.get("props") {
        None | Some(Json::Null) => Some(Json::Object(Map::new())),
        Some(props @ Json::Object(_)) if props.to_string().len() <= MAX_PROPS_BYTES => {
            Some(props.clone())
        }
        Some(Json::Object(_)) => {
            let message = format!("must be at most {MAX_PROPS_BYTES} bytes of JSON");
            problems.add(index, "props", InputCode::TooLong, message);
            None
        }
        Some(_) => {
            problems.add(index, "props", InputCode::Invalid, "must be an object");
            None
        }
    };
    let experiment =
        experiment_gid.and_then(
            |gid| match ids::decode_as("experimentId", &gid, "Experiment") {
                Ok(id) => Some(id),
                Err(_) => {
                    let message = "must be an experiment's global id";
                    problems.add(index, "experimentId", InputCode::Invalid, message);
                    None
                }
            },
        );
    if variant.is_some() && object.get("experimentId").is_none_or(Json::is_null) {
        let message = "needs the experimentId it is a variant of";
        problems.add(index, "variant", InputCode::Invalid, message);
    }
    if problems.count() > before {
        return None;
    }
    Some(Event {
        client_id: client_id?,
        event_type: event_type?,
        ts: ts?,
        anon_id: anon_id?,
        session_id,
        props: props?,
        product_id,
        experiment,
        variant,
    })
}

/// `add_to_cart`, `page_view`: a letter, then letters, digits and `_`, at most 64.
fn is_event_type(kind: &str) -> bool {
    kind.len() <= 64
        && kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// The stored id of a shop's event: its client id and `ts` hashed under the shop, so that
/// a retry finds the row it made, and two shops' ids never meet.
pub fn row_id(shop: Uuid, client_id: &str, ts: DateTime<Utc>) -> Uuid {
    let mut hash = Sha256::new();
    hash.update(shop.as_bytes());
    hash.update(ts.timestamp_micros().to_be_bytes());
    hash.update(client_id.as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The shop a storefront principal sends events for: its key's, or the shop itself.
pub fn shop_of(principal: &Principal) -> ApiResult<Uuid> {
    match principal {
        Principal::Storefront { shop } | Principal::Shop { id: shop } => Ok(*shop),
        _ => Err(ApiError::Forbidden(
            "storefront operations take a shop's ingest key or session token".to_owned(),
        )),
    }
}

/// Stores a checked batch for the caller's shop in one statement. Events naming an
/// experiment that is not the shop's, or a variant the experiment does not have, refuse
/// the batch.
pub async fn track(ctx: &WriteCtx<'_>, batch: Batch) -> ApiResult<Tracked> {
    // Read and written for the shop only (the storefront's API scope reads nothing).
    let shop = shop_of(ctx.principal)?;
    check_experiments(ctx, shop, &batch).await?;
    insert(ctx, shop, &batch).await
}

/// Refuses events of experiments that are not `shop`'s, or variants they do not have.
async fn check_experiments(ctx: &WriteCtx<'_>, shop: Uuid, batch: &Batch) -> ApiResult<()> {
    let named: Vec<Uuid> = {
        let mut ids: Vec<Uuid> = batch.events.iter().filter_map(|e| e.experiment).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    if named.is_empty() {
        return Ok(());
    }
    let mut select = Query::select();
    select
        .from("experiments")
        .columns(["id", "allocation"])
        .and_where(Expr::col("shop_id").eq(shop))
        .and_where(Expr::col("id").is_in(named));
    let mut variants: BTreeMap<Uuid, Json> = BTreeMap::new();
    for row in ctx.db.query_all(&select).await? {
        variants.insert(row.try_get_by_index(0)?, row.try_get_by_index(1)?);
    }
    let mut problems = Problems::new(&batch.at);
    for (index, event) in batch.events.iter().enumerate() {
        let Some(experiment) = event.experiment else {
            continue;
        };
        match variants.get(&experiment) {
            None => problems.add(
                index,
                "experimentId",
                InputCode::NotFound,
                "no such experiment",
            ),
            Some(allocation) => {
                if let Some(variant) = &event.variant
                    && allocation.get(variant).is_none()
                {
                    let message = format!("the experiment has no variant {variant:?}");
                    problems.add(index, "variant", InputCode::Invalid, message);
                }
            }
        }
    }
    problems.into_result()
}

/// One multi-row `INSERT ... ON CONFLICT DO NOTHING`, its events numbered in arrival
/// order ([`sequence`]).
async fn insert(ctx: &WriteCtx<'_>, shop: Uuid, batch: &Batch) -> ApiResult<Tracked> {
    let first = sequence::number(ctx.db).await?;
    let mut columns = vec![
        "id",
        "shop_id",
        "anon_id",
        "session_id",
        "event_type",
        "ts",
        "props",
        "product_id",
        "experiment_id",
        "variant",
    ];
    if first.is_some() {
        columns.push("seq");
    }
    let mut insert = Query::insert();
    insert.into_table("events").columns(columns);
    for (n, event) in (0i64..).zip(&batch.events) {
        let seq = first.map(|first| Expr::val(first + n));
        insert
            .values(
                [
                    Expr::val(row_id(shop, &event.client_id, event.ts)),
                    Expr::val(shop),
                    Expr::val(event.anon_id.as_str()),
                    Expr::val(event.session_id.as_str()),
                    Expr::val(event.event_type.as_str()),
                    Expr::val(event.ts),
                    Expr::val(event.props.clone()),
                    Expr::val(event.product_id.clone()),
                    Expr::val(event.experiment.map(|id| id.to_string())),
                    Expr::val(event.variant.clone()),
                ]
                .into_iter()
                .chain(seq),
            )
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    insert.on_conflict(OnConflict::new().do_nothing().to_owned());
    let stored = ctx.db.execute(&insert).await?.rows_affected();
    let total = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    Ok(Tracked {
        stored,
        duplicates: total.saturating_sub(stored),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at(now: DateTime<Utc>) -> String {
        now.to_rfc3339()
    }

    #[test]
    fn every_bad_event_is_named_by_index_and_field() {
        let now = Utc::now();
        let good = json!({ "id": "e1", "type": "page_view", "ts": at(now), "anonId": "v1" });
        let events = json!([
            good,
            { "id": "e2", "type": "Page View", "ts": at(now), "anonId": "v1" },
            { "id": "e3", "type": "page_view", "ts": "yesterday", "anonId": "" },
            { "id": "e4", "type": "page_view", "ts": at(now - Duration::days(30)), "anonId": "v",
              "colour": 1, "props": [1] },
            { "id": "e1", "type": "page_view", "ts": at(now - Duration::seconds(1)), "anonId": "v1" },
            { "id": "e6", "type": "page_view", "ts": at(now), "anonId": "v", "variant": "b" },
            7,
        ]);
        let fields = crate::domains::batch::refused_fields(Batch::parse("events", &events, now));
        assert_eq!(
            fields,
            [
                "events.1.type",
                "events.2.anonId",
                "events.2.ts",
                "events.3.colour",
                "events.3.ts",
                "events.3.props",
                "events.5.variant",
                "events.6",
                "events.4.ts",
            ]
        );
    }

    #[test]
    fn batches_hold_1_to_1000_events() {
        let now = Utc::now();
        let one = |i: usize| json!({ "id": format!("e{i}"), "type": "view", "ts": at(now), "anonId": "v" });
        let full = Json::Array((0..MAX_BATCH).map(one).collect());
        assert_eq!(
            Batch::parse("events", &full, now).map(|b| b.len()).ok(),
            Some(1000)
        );
        let over = Json::Array((0..=MAX_BATCH).map(one).collect());
        assert!(Batch::parse("events", &over, now).is_err());
        assert!(Batch::parse("events", &json!([]), now).is_err());
    }

    #[test]
    fn row_ids_depend_on_shop_id_and_ts() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let ts = Utc::now().trunc_subsecs(6);
        assert_eq!(row_id(a, "e1", ts), row_id(a, "e1", ts));
        assert_ne!(row_id(a, "e1", ts), row_id(b, "e1", ts));
        assert_ne!(row_id(a, "e1", ts), row_id(a, "e2", ts));
        assert_ne!(
            row_id(a, "e1", ts),
            row_id(a, "e1", ts + Duration::microseconds(1))
        );
    }
}
