//! Orders from AI responses: `orderCreateFromAiResponse` matches the extracted lines to
//! the catalog (by SKU, then by normalised name), all or nothing, computes the totals from
//! the lines, and makes the order `needs_review` when the response's confidence is under
//! the distributor's threshold (`settings.ai_confidence_threshold`, 0.8 by default).
//! `orderUpdateStatus` follows [`Status::may_become`].

use chrono::Utc;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, Query};
use serde_json::{Value, json};
use uuid::Uuid;

use super::webhooks::{self, Event};

use crate::domains::{WriteCtx, invalid_transition};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// The confidence under which an AI order needs review, unless the distributor sets one.
const DEFAULT_THRESHOLD: &str = "0.8";

/// An order's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Made by hand, not yet confirmed.
    Draft,
    /// Made from an AI response too unsure to trust.
    NeedsReview,
    /// Accepted.
    Confirmed,
    /// Packed and sent.
    Fulfilled,
    /// Received by the customer.
    Delivered,
    /// Called off.
    Cancelled,
}

impl Status {
    /// Every state.
    pub const ALL: [Self; 6] = [
        Self::Draft,
        Self::NeedsReview,
        Self::Confirmed,
        Self::Fulfilled,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::NeedsReview => "needs_review",
            Self::Confirmed => "confirmed",
            Self::Fulfilled => "fulfilled",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    /// The state stored or given as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether an order in this state may move to `next`: draft | needs_review ->
    /// confirmed -> fulfilled -> delivered, and anything not yet fulfilled may be
    /// cancelled.
    pub fn may_become(self, next: Self) -> bool {
        use Status::*;
        matches!(
            (self, next),
            (Draft | NeedsReview, Confirmed | Cancelled)
                | (Confirmed, Fulfilled | Cancelled)
                | (Fulfilled, Delivered)
        )
    }
}

/// A name as matched: lower-case, words separated by single spaces.
pub fn normalise(name: &str) -> String {
    name.split_whitespace()
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

/// A catalog product a line matched.
struct Product {
    id: Uuid,
    sku: String,
    name: String,
    unit: String,
    price: Decimal,
}

/// Makes the order an AI response describes (members and up).
pub async fn create_from_ai_response(ctx: &WriteCtx<'_>, response: Uuid) -> ApiResult<Uuid> {
    let orders = tables().named("orders")?;
    let field = "input.aiResponseId";
    let mut find = Query::select();
    find.from("ai_responses")
        .expr(Expr::col(("ai_responses", "distributor_id")))
        .expr(Expr::col(("ai_responses", "extracted_data")))
        .expr(Expr::col(("ai_responses", "confidence")))
        .expr(Expr::col(("ai_responses", "order_id")))
        .expr(Expr::col(("conversations", "customer_id")))
        .expr(Expr::col(("conversations", "id")))
        .inner_join(
            "messages",
            Expr::col(("messages", "id")).equals(("ai_responses", "message_id")),
        )
        .inner_join(
            "conversations",
            Expr::col(("conversations", "id")).equals(("messages", "conversation_id")),
        )
        .and_where(Expr::col(("ai_responses", "id")).eq(response));
    if let Some(distributors) = writable(ctx, orders) {
        find.and_where(Expr::col(("ai_responses", "distributor_id")).is_in(distributors));
    }
    let Some(row) = ctx.db.query_one(&find).await? else {
        return Err(ApiError::refused(
            field,
            InputCode::NotFound,
            "no such AI response",
        ));
    };
    let distributor: Uuid = row.try_get_by_index(0)?;
    let extracted: Value = row.try_get_by_index(1)?;
    let confidence: Option<Decimal> = row.try_get_by_index(2)?;
    let existing: Option<Uuid> = row.try_get_by_index(3)?;
    let customer: Uuid = row.try_get_by_index(4)?;
    let conversation: Uuid = row.try_get_by_index(5)?;
    if existing.is_some() {
        return Err(ApiError::refused(
            field,
            InputCode::InvalidTransition,
            "the AI response already has its order",
        ));
    }
    let threshold = threshold(ctx, distributor).await?;
    let catalog = catalog(ctx, distributor).await?;
    let items = extracted
        .get("items")
        .and_then(Value::as_array)
        .filter(|items| !items.is_empty())
        .ok_or_else(|| {
            ApiError::refused(field, InputCode::Invalid, "the response extracted no items")
        })?;
    let mut lines = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let sku = item.get("sku").and_then(Value::as_str).map(str::trim);
        let name = item.get("name").and_then(Value::as_str).map(normalise);
        let product = sku
            .and_then(|s| catalog.iter().find(|p| p.sku == s))
            .or_else(|| {
                name.as_deref()
                    .and_then(|n| catalog.iter().find(|p| normalise(&p.name) == n))
            })
            .ok_or_else(|| {
                ApiError::refused(
                    field,
                    InputCode::NotFound,
                    format!(
                        "item {i} ({}) matches no active catalog product by SKU or name",
                        sku.or(name.as_deref()).unwrap_or("unnamed")
                    ),
                )
            })?;
        let quantity = item
            .get("quantity")
            .and_then(|q| match q {
                Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
                Value::String(s) => s.trim().parse::<Decimal>().ok(),
                _ => None,
            })
            .filter(|q| *q > Decimal::ZERO && q.normalize().scale() <= 3)
            .ok_or_else(|| {
                ApiError::refused(
                    field,
                    InputCode::Invalid,
                    format!("item {i} has no quantity above 0 (at most three decimals)"),
                )
            })?;
        let total = (quantity * product.price).round_dp(2);
        lines.push((product, quantity, total));
    }
    let total: Decimal = lines.iter().map(|(_, _, t)| *t).sum();
    let status = match confidence {
        Some(c) if c >= threshold => Status::Draft,
        _ => Status::NeedsReview,
    };
    let order = Uuid::new_v4();
    let number = format!(
        "AI-{}-{}",
        Utc::now().format("%Y%m%d"),
        &order.simple().to_string()[..8]
    );
    let mut insert = Query::insert();
    insert
        .into_table("orders")
        .columns([
            "id",
            "customer_id",
            "conversation_id",
            "order_number",
            "status",
            "total_amount",
            "source",
            "distributor_id",
        ])
        .values([
            Expr::val(order),
            Expr::val(customer),
            Expr::val(conversation),
            Expr::val(number.as_str()),
            Expr::val(status.as_str()),
            Expr::val(total),
            Expr::val("ai"),
            Expr::val(distributor),
        ])
        .map_err(internal)?;
    ctx.db.execute(&insert).await?;
    let mut insert = Query::insert();
    insert.into_table("order_products").columns([
        "id",
        "order_id",
        "catalog_product_id",
        "product_name",
        "sku",
        "unit",
        "quantity",
        "unit_price",
        "line_total",
        "distributor_id",
    ]);
    let mut ids = Vec::new();
    for (product, quantity, line_total) in &lines {
        let id = Uuid::new_v4();
        ids.push(id);
        insert
            .values([
                Expr::val(id),
                Expr::val(order),
                Expr::val(product.id),
                Expr::val(product.name.as_str()),
                Expr::val(product.sku.as_str()),
                Expr::val(product.unit.as_str()),
                Expr::val(*quantity),
                Expr::val(product.price),
                Expr::val(*line_total),
                Expr::val(distributor),
            ])
            .map_err(internal)?;
    }
    ctx.db.execute(&insert).await?;
    let mut link = Query::update();
    link.table("ai_responses")
        .value("order_id", order)
        .and_where(Expr::col("id").eq(response));
    ctx.db.execute(&link).await?;
    ctx.outbox
        .record(Write::insert("orders", order, Some(distributor)));
    for id in ids {
        ctx.outbox
            .record(Write::insert("order_products", id, Some(distributor)));
    }
    ctx.outbox
        .record(Write::update("ai_responses", response, Some(distributor)));
    let data = json!({
        "order_id": order,
        "order_number": number,
        "status": status.as_str(),
        "total_amount": total,
        "customer_id": customer,
        "ai_response_id": response,
    });
    webhooks::emit(ctx, distributor, Event::OrderCreated, data).await?;
    Ok(order)
}

/// Announces an order made by a generated write (`orderCreate`, `ordersUpsert`) as
/// [`create_from_ai_response`] announces its own: `order.created`, in the same
/// transaction.
pub async fn announce_created(ctx: &WriteCtx<'_>, distributor: Uuid, order: Uuid) -> ApiResult<()> {
    let mut select = Query::select();
    select
        .from("orders")
        .columns(["order_number", "status", "total_amount", "customer_id"])
        .and_where(Expr::col("id").eq(order));
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::Internal("a created order is gone".to_owned()));
    };
    // Cents, as PostgreSQL's numeric(12, 2) gives them (SQLite gives `12.5`).
    let mut total: Decimal = row.try_get_by_index(2)?;
    total.rescale(2);
    let data = json!({
        "order_id": order,
        "order_number": row.try_get_by_index::<String>(0)?,
        "status": row.try_get_by_index::<String>(1)?,
        "total_amount": total,
        "customer_id": row.try_get_by_index::<Uuid>(3)?,
        "ai_response_id": Value::Null,
    });
    webhooks::emit(ctx, distributor, Event::OrderCreated, data).await
}

/// The distributors whose rows of `table` the caller may write (`None`: any, for
/// `service_role`): the write rule as a list, for a statement that joins tables.
fn writable(ctx: &WriteCtx<'_>, table: &crate::tables::Table) -> Option<Vec<Uuid>> {
    match ctx.scope {
        crate::store::Scope::Service => None,
        crate::store::Scope::User { distributors, .. } => Some(
            distributors
                .iter()
                .copied()
                .filter(|d| ctx.scope.may_write(table, Some(*d)))
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}

/// The distributor's confidence threshold.
async fn threshold(ctx: &WriteCtx<'_>, distributor: Uuid) -> ApiResult<Decimal> {
    let mut select = Query::select();
    select
        .from("distributors")
        .column("settings")
        .and_where(Expr::col("id").eq(distributor));
    let settings: Value = match ctx.db.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => Value::Null,
    };
    let configured = settings
        .get("ai_confidence_threshold")
        .and_then(|v| match v {
            Value::Number(n) => n.to_string().parse::<Decimal>().ok(),
            Value::String(s) => s.parse::<Decimal>().ok(),
            _ => None,
        });
    Ok(configured.unwrap_or_else(|| DEFAULT_THRESHOLD.parse().unwrap_or(Decimal::ONE)))
}

/// The distributor's active catalog.
async fn catalog(ctx: &WriteCtx<'_>, distributor: Uuid) -> ApiResult<Vec<Product>> {
    let mut select = Query::select();
    select
        .from("catalog_products")
        .columns(["id", "sku", "name", "unit", "price"])
        .and_where(Expr::col("distributor_id").eq(distributor))
        .and_where(Expr::col("active").eq(true));
    let mut products = Vec::new();
    for row in ctx.db.query_all(&select).await? {
        products.push(Product {
            id: row.try_get_by_index(0)?,
            sku: row.try_get_by_index(1)?,
            name: row.try_get_by_index(2)?,
            unit: row.try_get_by_index(3)?,
            price: row.try_get_by_index(4)?,
        });
    }
    Ok(products)
}

/// Moves an order to `next` (members and up); a move [`Status::may_become`] refuses is
/// `INVALID_TRANSITION`, the state it is in already changes nothing.
pub async fn update_status(ctx: &WriteCtx<'_>, order: Uuid, next: Status) -> ApiResult<Uuid> {
    let table = tables().named("orders")?;
    let mut select = Query::select();
    select
        .from(table.name)
        .columns(["status", "distributor_id"])
        .and_where(Expr::col("id").eq(order))
        .cond_where(ctx.scope.write_condition(table)?)
        .lock(LockType::Update);
    let Some(row) = ctx.db.query_one(&select).await? else {
        return Err(ApiError::refused(
            "input.id",
            InputCode::NotFound,
            "no such order",
        ));
    };
    let stored: String = row.try_get_by_index(0)?;
    let distributor: Uuid = row.try_get_by_index(1)?;
    let before = Status::parse(&stored)
        .ok_or_else(|| invalid_transition("order", &stored, next.as_str()))?;
    if before == next {
        return Ok(order);
    }
    if !before.may_become(next) {
        return Err(invalid_transition(
            "order",
            before.as_str(),
            &format!("become {}", next.as_str()),
        ));
    }
    let mut update = Query::update();
    update
        .table(table.name)
        .value("status", next.as_str())
        .and_where(Expr::col("id").eq(order));
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update("orders", order, Some(distributor)));
    let data = json!({ "order_id": order, "from": before.as_str(), "to": next.as_str() });
    webhooks::emit(ctx, distributor, Event::OrderStatusChanged, data).await?;
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_of_states_is_decided() {
        use Status::*;
        let allowed = [
            (Draft, Confirmed),
            (Draft, Cancelled),
            (NeedsReview, Confirmed),
            (NeedsReview, Cancelled),
            (Confirmed, Fulfilled),
            (Confirmed, Cancelled),
            (Fulfilled, Delivered),
        ];
        for from in Status::ALL {
            for to in Status::ALL {
                assert_eq!(
                    from.may_become(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn names_match_whatever_their_case_and_spacing() {
        assert_eq!(normalise("  Red   APPLES "), "red apples");
    }
}
