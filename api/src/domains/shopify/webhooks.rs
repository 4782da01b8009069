//! What Shopify's webhooks change, once per delivery: the receipt (`webhook_receipts`) is
//! written in the same transaction as the change, so a retried delivery is acknowledged
//! and nothing else. Topics: `app/uninstalled`, `products/create|update|delete`,
//! `orders/create|updated` (`orders_cache`, attributed to the visitor's experiment
//! variants through the order's `_stratix_anon_id` cart attribute), and the mandatory
//! privacy topics: `customers/data_request` and `customers/redact` are recorded (the apps
//! keep no customer records of a shop: orders are cached without their customer),
//! `shop/redact` deletes every row of the shop.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Order, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domains::WriteCtx;
use crate::error::{ApiError, ApiResult};
use crate::graphql::ids;
use crate::realtime::Write;

/// A webhook topic the apps subscribe to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    /// The merchant uninstalled the app.
    AppUninstalled,
    /// A product was made.
    ProductsCreate,
    /// A product changed.
    ProductsUpdate,
    /// A product was deleted.
    ProductsDelete,
    /// An order was placed.
    OrdersCreate,
    /// An order changed.
    OrdersUpdated,
    /// A customer asked for their data.
    CustomersDataRequest,
    /// A customer's data must be erased.
    CustomersRedact,
    /// The shop's data must be erased (48 hours after uninstalling).
    ShopRedact,
}

impl Topic {
    const ALL: [(Self, &'static str); 9] = [
        (Self::AppUninstalled, "app/uninstalled"),
        (Self::ProductsCreate, "products/create"),
        (Self::ProductsUpdate, "products/update"),
        (Self::ProductsDelete, "products/delete"),
        (Self::OrdersCreate, "orders/create"),
        (Self::OrdersUpdated, "orders/updated"),
        (Self::CustomersDataRequest, "customers/data_request"),
        (Self::CustomersRedact, "customers/redact"),
        (Self::ShopRedact, "shop/redact"),
    ];

    /// The topic named `text` (`X-Shopify-Topic`).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, name)| *name == text)
            .map(|(t, _)| *t)
    }

    /// The topic's name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("", |(_, name)| name)
    }
}

/// One delivery, verified.
#[derive(Clone, Debug)]
pub struct Delivery {
    /// `shops.id`.
    pub shop: Uuid,
    /// `X-Shopify-Shop-Domain`.
    pub domain: String,
    /// `X-Shopify-Webhook-Id`.
    pub id: String,
    /// `X-Shopify-Topic`.
    pub topic: Topic,
    /// The body.
    pub payload: Json,
}

/// What a delivery did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// Applied now.
    Applied,
    /// Received before: nothing done.
    Duplicate,
}

/// Applies a delivery once (the caller's transaction is the service's).
pub async fn receive(ctx: &WriteCtx<'_>, delivery: Delivery) -> ApiResult<Received> {
    let mut receipt = Query::insert();
    receipt
        .into_table(migration::WEBHOOK_RECEIPTS)
        .columns([
            "source",
            "delivery_id",
            "topic",
            "shop_domain",
            "received_at",
        ])
        .values([
            Expr::val("shopify"),
            Expr::val(delivery.id.as_str()),
            Expr::val(delivery.topic.as_str()),
            Expr::val(delivery.domain.as_str()),
            Expr::val(Utc::now()),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns(["source", "delivery_id"])
                .do_nothing()
                .to_owned(),
        );
    if ctx.db.execute(&receipt).await?.rows_affected() == 0 {
        return Ok(Received::Duplicate);
    }
    let shop = delivery.shop;
    let payload = &delivery.payload;
    match delivery.topic {
        Topic::AppUninstalled => {
            super::shops::uninstall(ctx, shop).await?;
        }
        Topic::ProductsCreate | Topic::ProductsUpdate => upsert_product(ctx, shop, payload).await?,
        Topic::ProductsDelete => {
            let mut delete = Query::delete();
            delete
                .from_table("products")
                .and_where(Expr::col("shop_id").eq(shop))
                .and_where(Expr::col("shopify_id").eq(shopify_id(payload)?))
                .returning(Query::returning().column("id"));
            for row in ctx.db.query_all(&delete).await? {
                let id: Uuid = row.try_get_by_index(0)?;
                ctx.outbox.record(Write::delete("products", id, Some(shop)));
            }
        }
        Topic::OrdersCreate | Topic::OrdersUpdated => upsert_order(ctx, shop, payload).await?,
        Topic::CustomersDataRequest | Topic::CustomersRedact => {}
        Topic::ShopRedact => {
            // Every table of a shop's data cascades from its row.
            let mut delete = Query::delete();
            delete
                .from_table("shops")
                .and_where(Expr::col("id").eq(shop));
            ctx.db.execute(&delete).await?;
            ctx.outbox.record(Write::delete("shops", shop, Some(shop)));
        }
    }
    Ok(Received::Applied)
}

/// Shopify's `id` of a product or order (a number, or its text).
fn shopify_id(payload: &Json) -> ApiResult<String> {
    match payload.get("id") {
        Some(Json::Number(n)) => Ok(n.to_string()),
        Some(Json::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ApiError::bad_input("id", "the payload has no id")),
    }
}

fn text<'a>(payload: &'a Json, key: &str) -> Option<&'a str> {
    payload
        .get(key)
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
}

async fn upsert_product(ctx: &WriteCtx<'_>, shop: Uuid, payload: &Json) -> ApiResult<()> {
    let id = shopify_id(payload)?;
    let title =
        text(payload, "title").ok_or_else(|| ApiError::bad_input("title", "is required"))?;
    let handle = text(payload, "handle").unwrap_or(title).to_owned();
    let mut upsert = Query::insert();
    upsert
        .into_table("products")
        .columns([
            "id",
            "shopify_id",
            "handle",
            "title",
            "description",
            "data",
            "shop_id",
        ])
        .values([
            Expr::val(Uuid::new_v4()),
            Expr::val(id),
            Expr::val(handle),
            Expr::val(title.to_owned()),
            Expr::val(text(payload, "body_html").map(str::to_owned)),
            Expr::val(payload.clone()),
            Expr::val(shop),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns(["shop_id", "shopify_id"])
                .update_columns(["handle", "title", "description", "data"])
                .to_owned(),
        )
        .returning(Query::returning().column("id"));
    if let Some(row) = ctx.db.query_one(&upsert).await? {
        let id: Uuid = row.try_get_by_index(0)?;
        ctx.outbox.record(Write::update("products", id, Some(shop)));
    }
    Ok(())
}

async fn upsert_order(ctx: &WriteCtx<'_>, shop: Uuid, payload: &Json) -> ApiResult<()> {
    let money = |key: &str| -> ApiResult<Option<Decimal>> {
        match text(payload, key) {
            None => Ok(None),
            Some(amount) => amount
                .parse::<Decimal>()
                .ok()
                .filter(|d| *d >= Decimal::ZERO)
                .map(Some)
                .ok_or_else(|| ApiError::bad_input(key, "must be an amount")),
        }
    };
    let total =
        money("total_price")?.ok_or_else(|| ApiError::bad_input("total_price", "is required"))?;
    let created_at = text(payload, "created_at")
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc));
    let lines = payload
        .get("line_items")
        .and_then(Json::as_array)
        .map_or(0, Vec::len);
    let attribution = attribution(ctx, shop, payload).await?;
    let mut upsert = Query::insert();
    upsert
        .into_table("orders_cache")
        .columns([
            "id",
            "order_id",
            "total",
            "subtotal",
            "line_count",
            "attribution",
            "created_at",
            "shop_id",
        ])
        .values([
            Expr::val(Uuid::new_v4()),
            Expr::val(shopify_id(payload)?),
            Expr::val(total),
            Expr::val(money("subtotal_price")?),
            Expr::val(i32::try_from(lines).unwrap_or(i32::MAX)),
            Expr::val(attribution),
            Expr::val(created_at),
            Expr::val(shop),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::columns(["shop_id", "order_id"])
                .update_columns(["total", "subtotal", "line_count", "attribution"])
                .to_owned(),
        )
        .returning(Query::returning().column("id"));
    if let Some(row) = ctx.db.query_one(&upsert).await? {
        let id: Uuid = row.try_get_by_index(0)?;
        ctx.outbox
            .record(Write::update("orders_cache", id, Some(shop)));
    }
    Ok(())
}

/// The cart attribute the storefront script sets to the visitor's anonymous id, so an
/// order can be traced to the experiments the visitor was in.
pub const ANON_ID_ATTRIBUTE: &str = "_stratix_anon_id";

/// Where an order came from: the order's `source_name`, `landing_site` and
/// `referring_site`, and, when its [`ANON_ID_ATTRIBUTE`] names a visitor assigned in the
/// shop's experiments, `anon_id` and `experiments` (`[{experimentId, variant}]`, global
/// ids). Only `shop`'s assignments count.
async fn attribution(ctx: &WriteCtx<'_>, shop: Uuid, payload: &Json) -> ApiResult<Json> {
    let mut attribution = serde_json::Map::new();
    for key in ["source_name", "landing_site", "referring_site"] {
        let value = text(payload, key).map_or(Json::Null, Json::from);
        attribution.insert(key.to_owned(), value);
    }
    let anon_id = payload
        .get("note_attributes")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("name").and_then(Json::as_str) == Some(ANON_ID_ATTRIBUTE))
        .and_then(|a| text(a, "value"));
    if let Some(anon_id) = anon_id {
        let mut select = Query::select();
        select
            .from("assignments")
            .columns(["experiment_id", "variant"])
            .and_where(Expr::col("shop_id").eq(shop))
            .and_where(Expr::col("anon_id").eq(anon_id))
            .order_by("assigned_at", Order::Asc)
            .order_by("experiment_id", Order::Asc);
        let mut experiments = Vec::new();
        for row in ctx.db.query_all(&select).await? {
            let experiment: Uuid = row.try_get_by_index(0)?;
            let variant: String = row.try_get_by_index(1)?;
            experiments.push(serde_json::json!({
                "experimentId": ids::encode("Experiment", experiment),
                "variant": variant,
            }));
        }
        if !experiments.is_empty() {
            attribution.insert("anon_id".to_owned(), Json::from(anon_id));
            attribution.insert("experiments".to_owned(), Json::Array(experiments));
        }
    }
    Ok(Json::Object(attribution))
}
