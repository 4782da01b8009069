//! Counting storefront events into `results_aggregates`, incrementally: each pass reads
//! only the events that arrived since the last (`events.seq` past the watermark kept in
//! `event_cursors`, up to what has [settled](sequence::settled)), adds what they say to the
//! counts, refreshes the touched experiments' posteriors ([`results::refresh`]) and moves
//! the watermark, all in one transaction: an event is counted once, however passes fail.
//!
//! What counts, for a running experiment:
//! - an **exposure** is an event naming the experiment and a variant: the visitor's first
//!   one marks their assignment exposed (making the assignment from the event when the
//!   storefront did not ask for one) and adds a visitor to their variant, and to their
//!   segment's row when the exposure says `props.device`;
//! - an **outcome** is a `page_view` or `product_view` (views), `add_to_cart`,
//!   `begin_checkout` or `purchase` of an exposed visitor at or after their exposure:
//!   views, carts and checkouts are counted as events; `purchase` counts each visitor's
//!   first (a rate's numerator, under `visitors`), and revenue adds every purchase's
//!   `props.value`.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::{
    Expr, ExprTrait, IntoColumnRef, JoinType, LockType, OnConflict, Query, ReturningClause,
    SimpleExpr,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryResult};
use serde_json::Value as Json;
use uuid::Uuid;

use super::assignments::{self, NewAssignment};
use super::lifecycle::Status;
use super::results;
use crate::domains::shopify::sequence;
use crate::domains::{ServiceWork, WriteCtx};
use crate::error::{ApiError, ApiResult};
use crate::realtime::Write;

/// This reader's name in `event_cursors`.
const CURSOR: &str = "experiment_results";

/// The most `seq` numbers one transaction counts.
const WINDOW: i64 = 20_000;

/// The outcome events, as stored in `event_type`.
const OUTCOMES: [&str; 5] = [
    "page_view",
    "product_view",
    "add_to_cart",
    "begin_checkout",
    "purchase",
];

/// The longest segment name kept (`assignments.segment`).
const MAX_SEGMENT: usize = 32;

/// What one pass adds to a row of `results_aggregates`.
#[derive(Clone, Debug, Default, PartialEq)]
struct Counts {
    visitors: i32,
    views: i32,
    add_to_cart: i32,
    begin_checkout: i32,
    purchase: i32,
    revenue: Decimal,
}

/// A row of `results_aggregates`: experiment, variant, segment (`None`: all visitors).
type Key = (Uuid, String, Option<String>);

/// The counts a window adds, per row, with each experiment's shop.
#[derive(Default)]
struct Tally {
    rows: BTreeMap<Key, Counts>,
    shops: HashMap<Uuid, Uuid>,
}

impl Tally {
    /// Adds to the variant's row for all visitors and, with a segment, to the segment's.
    fn add(&mut self, visitor: &Visitor, change: impl Fn(&mut Counts)) {
        self.shops.insert(visitor.experiment, visitor.shop);
        let all = (visitor.experiment, visitor.variant.clone(), None);
        change(self.rows.entry(all).or_default());
        if let Some(segment) = &visitor.segment {
            let one = (
                visitor.experiment,
                visitor.variant.clone(),
                Some(segment.clone()),
            );
            change(self.rows.entry(one).or_default());
        }
    }
}

/// An exposed visitor of an experiment.
struct Visitor {
    shop: Uuid,
    experiment: Uuid,
    variant: String,
    segment: Option<String>,
}

/// Counts every settled event not counted yet, one transaction per [`WINDOW`]; returns
/// the writes, for the broker.
pub async fn tally(db: &DatabaseConnection) -> ApiResult<Vec<Write>> {
    let settled = sequence::settled(db).await?;
    let mut writes = Vec::new();
    loop {
        let work = ServiceWork::begin(db).await?;
        let counted = count_window(&work.ctx(), settled).await;
        writes.extend(work.finish(counted.is_ok()).await?);
        if !counted? {
            return Ok(writes);
        }
    }
}

/// Counts the next window up to `settled`; `true` when more remain.
async fn count_window(ctx: &WriteCtx<'_>, settled: i64) -> ApiResult<bool> {
    let from = watermark(ctx).await?;
    if from >= settled {
        return Ok(false);
    }
    let to = Ord::min(settled, from.saturating_add(WINDOW));
    let running = running(ctx).await?;
    if !running.is_empty() {
        let mut tally = Tally::default();
        expose(ctx, &running, (from, to), &mut tally).await?;
        convert(ctx, &running, (from, to), &mut tally).await?;
        let experiments: Vec<Uuid> = tally.shops.keys().copied().collect();
        store(ctx, tally).await?;
        for experiment in experiments {
            results::refresh(ctx, experiment).await?;
        }
    }
    let mut update = Query::update();
    update
        .table(migration::EVENT_CURSORS)
        .value("seq", to)
        .value("updated_at", Utc::now())
        .and_where(Expr::col("name").eq(CURSOR));
    ctx.db.execute(&update).await?;
    Ok(to < settled)
}

/// The watermark, its row locked for the transaction (made at 0 the first time).
async fn watermark(ctx: &WriteCtx<'_>) -> ApiResult<i64> {
    let mut insert = Query::insert();
    insert
        .into_table(migration::EVENT_CURSORS)
        .columns(["name", "seq", "updated_at"])
        .values([Expr::val(CURSOR), Expr::val(0i64), Expr::val(Utc::now())])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(OnConflict::column("name").do_nothing().to_owned());
    ctx.db.execute(&insert).await?;
    let mut select = Query::select();
    select
        .from(migration::EVENT_CURSORS)
        .column("seq")
        .and_where(Expr::col("name").eq(CURSOR))
        .lock(LockType::Update);
    let row = ctx
        .db
        .query_one(&select)
        .await?
        .ok_or_else(|| ApiError::Internal("the results watermark is gone".to_owned()))?;
    Ok(row.try_get_by_index(0)?)
}

/// The running experiments and their shops.
async fn running(ctx: &WriteCtx<'_>) -> ApiResult<HashMap<Uuid, Uuid>> {
    let mut select = Query::select();
    select
        .from("experiments")
        .columns(["id", "shop_id"])
        .and_where(Expr::col("status").eq(Status::Running.as_str()));
    let mut running = HashMap::new();
    for row in ctx.db.query_all(&select).await? {
        running.insert(row.try_get_by_index(0)?, row.try_get_by_index(1)?);
    }
    Ok(running)
}

/// `column` (a `seq`) in `(from, to]`.
fn window<C: IntoColumnRef + Clone>(column: C, (from, to): (i64, i64)) -> [SimpleExpr; 2] {
    [
        Expr::col(column.clone()).gt(from),
        Expr::col(column).lte(to),
    ]
}

/// Marks the window's newly exposed visitors and counts them.
async fn expose(
    ctx: &WriteCtx<'_>,
    running: &HashMap<Uuid, Uuid>,
    range: (i64, i64),
    tally: &mut Tally,
) -> ApiResult<()> {
    let mut select = Query::select();
    select
        .from("events")
        .columns([
            "shop_id",
            "experiment_id",
            "variant",
            "anon_id",
            "session_id",
            "ts",
            "props",
        ])
        .and_where(Expr::col("experiment_id").is_not_null())
        .and_where(Expr::col("variant").is_not_null())
        .order_by("seq", sea_orm::Order::Asc);
    for condition in window("seq", range) {
        select.and_where(condition);
    }
    let mut seen = HashSet::new();
    for row in ctx.db.query_all(&select).await? {
        let shop: Uuid = row.try_get_by_index(0)?;
        let named: String = row.try_get_by_index(1)?;
        let Ok(experiment) = Uuid::parse_str(&named) else {
            continue;
        };
        let anon: String = row.try_get_by_index(3)?;
        if running.get(&experiment) != Some(&shop) || !seen.insert((experiment, anon.clone())) {
            continue;
        }
        let ts: DateTime<Utc> = row.try_get_by_index(5)?;
        let segment = segment(&row.try_get_by_index(6)?);
        let exposed = mark_exposed(ctx, shop, experiment, &anon, ts, segment.as_deref()).await?;
        let variant = match exposed {
            Some(variant) => variant,
            None => {
                let variant: String = row.try_get_by_index(2)?;
                let session: String = row.try_get_by_index(4)?;
                // Exposed without asking for an assignment: the exposure makes it.
                let first = NewAssignment {
                    shop,
                    experiment,
                    anon_id: &anon,
                    session_id: &session,
                    variant: &variant,
                    exposed: Some((ts, segment.as_deref())),
                };
                if !assignments::record(ctx, first).await? {
                    continue;
                }
                variant
            }
        };
        let visitor = Visitor {
            shop,
            experiment,
            variant,
            segment,
        };
        tally.add(&visitor, |c| c.visitors += 1);
    }
    Ok(())
}

/// Marks the visitor's unexposed assignment exposed; its variant, or `None` when there is
/// no assignment or it was exposed before.
async fn mark_exposed(
    ctx: &WriteCtx<'_>,
    shop: Uuid,
    experiment: Uuid,
    anon: &str,
    ts: DateTime<Utc>,
    segment: Option<&str>,
) -> ApiResult<Option<String>> {
    let mut update = Query::update();
    update
        .table("assignments")
        .value("exposed_at", ts)
        .value("segment", segment)
        .and_where(Expr::col("shop_id").eq(shop))
        .and_where(Expr::col("experiment_id").eq(experiment))
        .and_where(Expr::col("anon_id").eq(anon))
        .and_where(Expr::col("exposed_at").is_null())
        .returning(ReturningClause::Columns(vec![
            "id".into(),
            "variant".into(),
        ]));
    let Some(row) = ctx.db.query_one(&update).await? else {
        return Ok(None);
    };
    let id: Uuid = row.try_get_by_index(0)?;
    ctx.outbox
        .record(Write::update("assignments", id, Some(shop)));
    Ok(Some(row.try_get_by_index(1)?))
}

/// Counts the window's outcomes of exposed visitors.
async fn convert(
    ctx: &WriteCtx<'_>,
    running: &HashMap<Uuid, Uuid>,
    range: (i64, i64),
    tally: &mut Tally,
) -> ApiResult<()> {
    let mut select = Query::select();
    select
        .from_as("events", "e")
        .join_as(
            JoinType::InnerJoin,
            "assignments",
            "a",
            Expr::col(("a", "shop_id"))
                .equals(("e", "shop_id"))
                .and(Expr::col(("a", "anon_id")).equals(("e", "anon_id"))),
        )
        .columns([
            ("a", "id"),
            ("a", "shop_id"),
            ("a", "experiment_id"),
            ("a", "variant"),
            ("a", "segment"),
            ("a", "exposed_at"),
            ("a", "converted_at"),
            ("e", "event_type"),
            ("e", "ts"),
            ("e", "props"),
        ])
        .and_where(Expr::col(("e", "event_type")).is_in(OUTCOMES))
        .and_where(Expr::col(("a", "exposed_at")).is_not_null())
        .order_by(("e", "seq"), sea_orm::Order::Asc);
    for condition in window(("e", "seq"), range) {
        select.and_where(condition);
    }
    let mut converted: HashMap<Uuid, (Uuid, DateTime<Utc>)> = HashMap::new();
    for row in ctx.db.query_all(&select).await? {
        let (assignment, visitor) = exposed_visitor(&row)?;
        if running.get(&visitor.experiment) != Some(&visitor.shop) {
            continue;
        }
        let exposed_at: DateTime<Utc> = row.try_get_by_index(5)?;
        let ts: DateTime<Utc> = row.try_get_by_index(8)?;
        if ts < exposed_at {
            continue;
        }
        let event: String = row.try_get_by_index(7)?;
        match event.as_str() {
            "page_view" | "product_view" => tally.add(&visitor, |c| c.views += 1),
            "add_to_cart" => tally.add(&visitor, |c| c.add_to_cart += 1),
            "begin_checkout" => tally.add(&visitor, |c| c.begin_checkout += 1),
            _ => {
                let before: Option<DateTime<Utc>> = row.try_get_by_index(6)?;
                let first = before.is_none() && !converted.contains_key(&assignment);
                if first {
                    converted.insert(assignment, (visitor.shop, ts));
                }
                let value = revenue(&row.try_get_by_index(9)?);
                tally.add(&visitor, |c| {
                    c.purchase += i32::from(first);
                    c.revenue += value;
                });
            }
        }
    }
    for (id, (shop, ts)) in converted {
        let mut update = Query::update();
        update
            .table("assignments")
            .value("converted_at", ts)
            .and_where(Expr::col("id").eq(id));
        ctx.db.execute(&update).await?;
        ctx.outbox
            .record(Write::update("assignments", id, Some(shop)));
    }
    Ok(())
}

/// The assignment id and visitor of a [`convert`] row.
fn exposed_visitor(row: &QueryResult) -> ApiResult<(Uuid, Visitor)> {
    Ok((
        row.try_get_by_index(0)?,
        Visitor {
            shop: row.try_get_by_index(1)?,
            experiment: row.try_get_by_index(2)?,
            variant: row.try_get_by_index(3)?,
            segment: row.try_get_by_index(4)?,
        },
    ))
}

/// Adds the tally to `results_aggregates`, row by row (made where missing).
async fn store(ctx: &WriteCtx<'_>, tally: Tally) -> ApiResult<()> {
    let experiments: Vec<Uuid> = tally.shops.keys().copied().collect();
    let mut select = Query::select();
    select
        .from("results_aggregates")
        .columns([
            "id",
            "experiment_id",
            "variant",
            "segment",
            "visitors",
            "views",
            "add_to_cart",
            "begin_checkout",
            "purchase",
            "revenue",
        ])
        .and_where(Expr::col("experiment_id").is_in(experiments))
        .lock(LockType::Update);
    let mut stored: HashMap<Key, (Uuid, Counts)> = HashMap::new();
    for row in ctx.db.query_all(&select).await? {
        let key = (
            row.try_get_by_index(1)?,
            row.try_get_by_index(2)?,
            row.try_get_by_index(3)?,
        );
        let counts = Counts {
            visitors: row.try_get_by_index(4)?,
            views: row.try_get_by_index(5)?,
            add_to_cart: row.try_get_by_index(6)?,
            begin_checkout: row.try_get_by_index(7)?,
            purchase: row.try_get_by_index(8)?,
            revenue: row.try_get_by_index(9)?,
        };
        stored.insert(key, (row.try_get_by_index(0)?, counts));
    }
    for (key, added) in tally.rows {
        let shop = tally.shops[&key.0];
        let (id, before) = stored.remove(&key).unwrap_or_default();
        let now = Counts {
            visitors: before.visitors + added.visitors,
            views: before.views + added.views,
            add_to_cart: before.add_to_cart + added.add_to_cart,
            begin_checkout: before.begin_checkout + added.begin_checkout,
            purchase: before.purchase + added.purchase,
            revenue: before.revenue + added.revenue,
        };
        let values = [
            ("visitors", Expr::val(now.visitors)),
            ("views", Expr::val(now.views)),
            ("add_to_cart", Expr::val(now.add_to_cart)),
            ("begin_checkout", Expr::val(now.begin_checkout)),
            ("purchase", Expr::val(now.purchase)),
            ("revenue", Expr::val(now.revenue)),
        ];
        let write = if id.is_nil() {
            let id = Uuid::new_v4();
            let (experiment, variant, segment) = key.clone();
            let mut insert = Query::insert();
            insert
                .into_table("results_aggregates")
                .columns(
                    ["id", "shop_id", "experiment_id", "variant", "segment"]
                        .into_iter()
                        .chain(values.iter().map(|(column, _)| *column)),
                )
                .values(
                    [
                        Expr::val(id),
                        Expr::val(shop),
                        Expr::val(experiment),
                        Expr::val(variant),
                        Expr::val(segment),
                    ]
                    .into_iter()
                    .chain(values.into_iter().map(|(_, value)| value)),
                )
                .map_err(|e| ApiError::Internal(e.to_string()))?;
            ctx.db.execute(&insert).await?;
            Write::insert("results_aggregates", id, Some(shop))
        } else {
            let mut update = Query::update();
            update
                .table("results_aggregates")
                .values(values)
                .and_where(Expr::col("id").eq(id));
            ctx.db.execute(&update).await?;
            Write::update("results_aggregates", id, Some(shop))
        };
        ctx.outbox.record(write.key(key.0));
    }
    Ok(())
}

/// The segment an exposure's `props.device` names: a short lower-case word, else none.
fn segment(props: &Json) -> Option<String> {
    let device = props.get("device")?.as_str()?.trim().to_ascii_lowercase();
    let word = !device.is_empty()
        && device.len() <= MAX_SEGMENT
        && device
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    word.then_some(device)
}

/// A purchase's `props.value` (a number or a decimal string), to the cent; zero when it
/// has none or it is not a non-negative amount.
fn revenue(props: &Json) -> Decimal {
    let value = match props.get("value") {
        Some(Json::String(text)) => text.trim().parse::<Decimal>().ok(),
        Some(Json::Number(number)) => number.to_string().parse::<Decimal>().ok(),
        _ => None,
    };
    value
        .filter(|v| *v >= Decimal::ZERO)
        .map_or(Decimal::ZERO, |v| v.round_dp(2))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn segments_are_short_lower_case_words() {
        assert_eq!(
            segment(&json!({ "device": "Mobile" })).as_deref(),
            Some("mobile")
        );
        assert_eq!(segment(&json!({ "device": "smart tv" })), None);
        assert_eq!(segment(&json!({ "device": 3 })), None);
        assert_eq!(segment(&json!({})), None);
        assert_eq!(segment(&json!({ "device": "x".repeat(33) })), None);
    }

    #[test]
    fn revenue_takes_numbers_and_decimal_strings_to_the_cent() {
        assert_eq!(revenue(&json!({ "value": 19.99 })), Decimal::new(1999, 2));
        assert_eq!(revenue(&json!({ "value": "5.5" })), Decimal::new(550, 2));
        assert_eq!(revenue(&json!({ "value": -3 })), Decimal::ZERO);
        assert_eq!(revenue(&json!({ "value": "ten" })), Decimal::ZERO);
        assert_eq!(revenue(&json!({})), Decimal::ZERO);
    }
}
