//! Products' performance metrics (`performance_metrics`), recorded in batches of 1 to
//! [`MAX_BATCH`] by the shop itself or by `service_role` naming the shop. A batch with any
//! bad metric is refused whole, each problem named by its index and field, and nothing is
//! written; a good one is one multi-row insert. A product of another shop reads as an
//! unknown one.

use std::collections::HashSet;

use chrono::Utc;
use rust_decimal::Decimal;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::domains::WriteCtx;
use crate::domains::batch::{self, Problems};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::graphql::ids;
use crate::realtime::Write;
use crate::tables::tables;

/// The most metrics in one batch.
pub const MAX_BATCH: usize = 1_000;

/// The longest metric type, in characters.
const MAX_TYPE: usize = 64;

/// The most decimal places `performance_metrics.value` holds (`NUMERIC(20, 6)`).
const SCALE: u32 = 6;

/// The most digits before the decimal point it holds.
const INTEGER_DIGITS: usize = 14;

/// The fields of a metric.
const FIELDS: [&str; 3] = ["productId", "metricType", "value"];

/// One checked measurement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    /// The product measured (`products.id`).
    pub product: Uuid,
    /// What was measured: lower-case letters, digits and `_` (`views`, `conversion_rate`).
    pub metric_type: String,
    /// The value.
    pub value: Decimal,
}

/// A checked batch for a shop, and the input path its problems are reported under.
#[derive(Clone, Debug)]
pub struct MetricBatch {
    at: String,
    shop: Option<Uuid>,
    metrics: Vec<Metric>,
}

/// What a batch recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The rows made, in the batch's order.
    pub ids: Vec<Uuid>,
}

impl MetricBatch {
    /// Checks `metrics` (a list of metric objects, as JSON) given at input path `at`
    /// (`input.metrics`) for `shop` (`None`: the caller's own); every problem found is
    /// reported.
    pub fn parse(at: &str, shop: Option<Uuid>, metrics: &Json) -> ApiResult<Self> {
        let list = batch::items(at, metrics, MAX_BATCH, "metrics")?;
        let mut problems = Problems::new(at);
        let parsed: Vec<Metric> = list
            .iter()
            .enumerate()
            .filter_map(|(index, value)| metric(&mut problems, index, value))
            .collect();
        problems.into_result()?;
        Ok(Self {
            at: at.to_owned(),
            shop,
            metrics: parsed,
        })
    }

    /// How many metrics.
    pub fn len(&self) -> usize {
        self.metrics.len()
    }

    /// Whether there are none (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }
}

/// Metric `index`, or `None` with its problems added.
fn metric(problems: &mut Problems<'_>, index: usize, value: &Json) -> Option<Metric> {
    let Some(object) = value.as_object() else {
        problems.add_item(index, InputCode::Invalid, "must be a metric object");
        return None;
    };
    let before = problems.count();
    for key in object.keys() {
        if !FIELDS.contains(&key.as_str()) {
            problems.add(index, key, InputCode::Invalid, "is not a field of a metric");
        }
    }
    let product = match object.get("productId") {
        None | Some(Json::Null) => {
            problems.add(index, "productId", InputCode::Blank, "is required");
            None
        }
        Some(Json::String(gid)) => match ids::decode_as("productId", gid, "Product") {
            Ok(id) => Some(id),
            Err(_) => {
                let message = "must be a product's global id";
                problems.add(index, "productId", InputCode::Invalid, message);
                None
            }
        },
        Some(_) => {
            let message = "must be a product's global id";
            problems.add(index, "productId", InputCode::Invalid, message);
            None
        }
    };
    let metric_type = match object.get("metricType") {
        None | Some(Json::Null) => {
            problems.add(index, "metricType", InputCode::Blank, "is required");
            None
        }
        Some(Json::String(kind)) if kind.is_empty() => {
            problems.add(index, "metricType", InputCode::Blank, "must not be empty");
            None
        }
        Some(Json::String(kind)) if kind.chars().count() > MAX_TYPE => {
            let message = format!("must be at most {MAX_TYPE} characters");
            problems.add(index, "metricType", InputCode::TooLong, message);
            None
        }
        Some(Json::String(kind)) if is_metric_type(kind) => Some(kind.clone()),
        Some(_) => {
            let message = "must be lower-case letters, digits and _, starting with a letter \
                           (`conversion_rate`)";
            problems.add(index, "metricType", InputCode::Invalid, message);
            None
        }
    };
    let value = match object.get("value") {
        None | Some(Json::Null) => {
            problems.add(index, "value", InputCode::Blank, "is required");
            None
        }
        Some(given) => match decimal(given) {
            Ok(value) => Some(value),
            Err(message) => {
                problems.add(index, "value", InputCode::Invalid, message);
                None
            }
        },
    };
    if problems.count() > before {
        return None;
    }
    Some(Metric {
        product: product?,
        metric_type: metric_type?,
        value: value?,
    })
}

/// `views`, `conversion_rate`: a letter, then letters, digits and `_`.
fn is_metric_type(kind: &str) -> bool {
    kind.starts_with(|c: char| c.is_ascii_lowercase())
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A value the column holds exactly: a decimal string or number with at most
/// [`INTEGER_DIGITS`] digits before the point and [`SCALE`] after it.
fn decimal(given: &Json) -> Result<Decimal, String> {
    let text = match given {
        Json::String(text) => text.trim().to_owned(),
        Json::Number(number) => number.to_string(),
        _ => return Err("must be a decimal number, like \"0.042\"".to_owned()),
    };
    let value: Decimal = text
        .parse()
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| "must be a decimal number, like \"0.042\"".to_owned())?;
    let value = value.normalize();
    if value.scale() > SCALE {
        return Err(format!("must have at most {SCALE} decimal places"));
    }
    if value.trunc().abs().to_string().len() > INTEGER_DIGITS {
        return Err(format!(
            "must have at most {INTEGER_DIGITS} digits before the decimal point"
        ));
    }
    Ok(value)
}

/// Records a checked batch for the caller's shop (or the one `service_role` names) in one
/// statement. Products that are not the shop's refuse the batch, each named.
pub async fn record(ctx: &WriteCtx<'_>, batch: MetricBatch) -> ApiResult<Recorded> {
    let shop = super::shops::acting_shop(ctx.principal, batch.shop)?;
    check_products(ctx, shop, &batch).await?;
    let now = Utc::now();
    let ids: Vec<Uuid> = batch.metrics.iter().map(|_| Uuid::new_v4()).collect();
    let mut insert = Query::insert();
    insert.into_table("performance_metrics").columns([
        "id",
        "product_id",
        "metric_type",
        "value",
        "created_at",
        "shop_id",
    ]);
    for (id, metric) in ids.iter().zip(&batch.metrics) {
        insert
            .values([
                Expr::val(*id),
                Expr::val(metric.product),
                Expr::val(metric.metric_type.as_str()),
                Expr::val(metric.value),
                Expr::val(now),
                Expr::val(shop),
            ])
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    }
    ctx.db.execute(&insert).await?;
    for id in &ids {
        ctx.outbox
            .record(Write::insert("performance_metrics", *id, Some(shop)));
    }
    Ok(Recorded { ids })
}

/// Refuses metrics of products that are not `shop`'s (or that the caller may not write).
async fn check_products(ctx: &WriteCtx<'_>, shop: Uuid, batch: &MetricBatch) -> ApiResult<()> {
    let named: HashSet<Uuid> = batch.metrics.iter().map(|m| m.product).collect();
    let products = tables().named("products")?;
    let mut select = Query::select();
    select
        .from(products.name)
        .column("id")
        .and_where(Expr::col("shop_id").eq(shop))
        .and_where(Expr::col("id").is_in(named))
        .cond_where(ctx.scope.write_condition(products)?);
    let mut found = HashSet::new();
    for row in ctx.db.query_all(&select).await? {
        found.insert(row.try_get_by_index::<Uuid>(0)?);
    }
    let mut problems = Problems::new(&batch.at);
    for (index, metric) in batch.metrics.iter().enumerate() {
        if !found.contains(&metric.product) {
            problems.add(index, "productId", InputCode::NotFound, "no such product");
        }
    }
    problems.into_result()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gid(id: Uuid) -> String {
        ids::encode("Product", id)
    }

    #[test]
    fn every_bad_metric_is_named_by_index_and_field() {
        let p = gid(Uuid::new_v4());
        let metrics = json!([
            { "productId": p, "metricType": "views", "value": 3 },
            { "productId": "nope", "metricType": "Views", "value": "x" },
            { "metricType": "", "value": "1.1234567" },
            { "productId": p, "metricType": "views", "value": "123456789012345", "colour": 1 },
            7,
        ]);
        let fields = crate::domains::batch::refused_fields(MetricBatch::parse(
            "input.metrics",
            None,
            &metrics,
        ));
        assert_eq!(
            fields,
            [
                "input.metrics.1.productId",
                "input.metrics.1.metricType",
                "input.metrics.1.value",
                "input.metrics.2.productId",
                "input.metrics.2.metricType",
                "input.metrics.2.value",
                "input.metrics.3.colour",
                "input.metrics.3.value",
                "input.metrics.4",
            ]
        );
    }

    #[test]
    fn batches_hold_1_to_1000_metrics() {
        let p = gid(Uuid::new_v4());
        let one = json!({ "productId": p, "metricType": "views", "value": "1" });
        let full = Json::Array(vec![one.clone(); MAX_BATCH]);
        let parsed = MetricBatch::parse("m", None, &full).map(|b| b.len()).ok();
        assert_eq!(parsed, Some(MAX_BATCH));
        let over = Json::Array(vec![one; MAX_BATCH + 1]);
        assert!(MetricBatch::parse("m", None, &over).is_err());
        assert!(MetricBatch::parse("m", None, &json!([])).is_err());
    }

    #[test]
    fn values_fit_the_column() {
        assert_eq!(decimal(&json!("0.042")), Ok(Decimal::new(42, 3)));
        assert_eq!(decimal(&json!(12.5)), Ok(Decimal::new(125, 1)));
        assert_eq!(decimal(&json!("1.500000000")), Ok(Decimal::new(15, 1)));
        assert_eq!(
            decimal(&json!("-99999999999999.999999")).map(|d| d.to_string()),
            Ok("-99999999999999.999999".to_owned())
        );
        for bad in [
            json!("1.0000001"),
            json!("100000000000000"),
            json!("NaN"),
            json!(true),
        ] {
            assert!(decimal(&bad).is_err(), "{bad}");
        }
    }
}
