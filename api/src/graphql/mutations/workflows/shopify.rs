//! The Shopify apps' workflows: installing shops, their settings, products' versioned AI
//! content and performance metrics, and the storefront's events.

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{InputObject, InputValue, TypeRef};
use chrono::Utc;
use uuid::Uuid;

use super::{Declaration, Input, Returned, declare, text};
use crate::domains::shopify::content::{self, NewRevision};
use crate::domains::shopify::events::{self, Batch, Tracked};
use crate::domains::shopify::metrics::{self, MetricBatch, Recorded};
use crate::domains::shopify::shops::{self, Installation, Settings};
use crate::error::ApiResult;
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "shopInstall",
            "Installs a shop, or re-activates an uninstalled one with its settings and data              (service_role: the app's OAuth or token-exchange step). The access token is stored              encrypted and never returned.",
            Right::Write,
            vec![
                InputValue::new("domain", TypeRef::named_nn(TypeRef::STRING))
                    .description("The shop's `<name>.myshopify.com` domain."),
                InputValue::new("accessToken", TypeRef::named_nn(TypeRef::STRING))
                    .description("The Admin API access token Shopify granted."),
                text(
                    "scope",
                    "The granted access scopes, comma-separated (`read_products,write_products`).",
                ),
                text("plan", "The app plan; `starter` when not given."),
            ],
            |input| {
                Installation::parse(
                    &input.string("domain")?.unwrap_or_default(),
                    &input.string("accessToken")?.unwrap_or_default(),
                    input.string("scope")?.as_deref(),
                    input.string("plan")?.as_deref(),
                )
            },
            |ctx, shop| Box::pin(shops::install(ctx, shop)),
            shop_row(),
        ),
        declare(
            "shopUninstall",
            "Marks a shop uninstalled, as Shopify's `app/uninstalled` webhook does: its session              tokens and ingest key stop working; its data stays until `shop/redact` or the              retention. The shop itself, or service_role naming it.",
            Right::Write,
            vec![shop_id()],
            optional_shop,
            |ctx, shop| Box::pin(shops::uninstall_shop(ctx, shop)),
            shop_row(),
        ),
        declare(
            "shopUpdateSettings",
            "Changes a shop's settings; those not given stay as they are. The shop itself, or              service_role naming it.",
            Right::Write,
            vec![
                shop_id(),
                text("brandVoice", "How the AI writes for the shop, up to 2,000 characters."),
                InputValue::new("autopilotLimits", TypeRef::named("JSON")).description(
                    "An object of limit name (a-z, 0-9, _) to a whole number >= 0, like                      `{\"patches_per_day\": 5}`; replaces the limits.",
                ),
                InputValue::new("dataRetentionDays", TypeRef::named(TypeRef::INT))
                    .description("How many days the shop's storefront events are kept, and its data after an uninstall: 1 to 3650 (unset: STRATIX_EVENTS_RETENTION_DAYS, 90)."),
                InputValue::new("allowWriteProducts", TypeRef::named(TypeRef::BOOLEAN))
                    .description("Whether the apps may change the shop's products."),
            ],
            |input| {
                Settings::parse(
                    optional_shop(input)?,
                    input.string("brandVoice")?,
                    input.json("autopilotLimits")?,
                    match input.get("dataRetentionDays") {
                        None => None,
                        Some(_) => Some(input.int("dataRetentionDays")?),
                    },
                    input.boolean("allowWriteProducts")?,
                )
            },
            |ctx, change| Box::pin(shops::update_settings(ctx, change)),
            shop_row(),
        ),
        declare(
            "contentRevisionCreate",
            "Adds the next revision of a product's content: version = the product's last + 1, \
             with no gap or duplicate however many are written at once.",
            Right::Write,
            vec![
                InputValue::new("productId", TypeRef::named_nn(TypeRef::ID))
                    .description("The product's global id."),
                InputValue::new("content", TypeRef::named_nn(TypeRef::STRING))
                    .description("The content, 1 to 100,000 characters."),
            ],
            |input| {
                NewRevision::parse(
                    input.id("productId", "Product")?,
                    &input.string("content")?.unwrap_or_default(),
                )
            },
            |ctx, revision| Box::pin(content::create(ctx, revision)),
            revision_row(),
        ),
        declare(
            "contentRevisionPublish",
            "Writes a revision's content to its product (`description`).",
            Right::Write,
            vec![revision_id()],
            |input| input.id("id", "ContentRevision"),
            |ctx, id| Box::pin(content::publish(ctx, id)),
            vec![Returned::Row("product", "products", |id: &Uuid| Some(*id))],
        ),
        declare(
            "contentRevisionRestore",
            "Makes a new revision equal to an old one; the history is never rewritten.",
            Right::Write,
            vec![revision_id()],
            |input| input.id("id", "ContentRevision"),
            |ctx, id| Box::pin(content::restore(ctx, id)),
            revision_row(),
        ),
        declare(
            "eventsTrack",
            "Stores a batch of 1 to 1,000 storefront events (as `POST /events` does), with \
             the shop's ingest key in `X-Stratix-Ingest-Key`, or as the shop. An event whose \
             id (with its `ts`) is already stored is skipped, so retries are safe. A batch \
             with any bad event is refused whole: `userErrors` names each bad event's index \
             and field (`[\"input\", \"events\", \"3\", \"type\"]`).",
            Right::Storefront,
            vec![
                InputValue::new(
                    "events",
                    TypeRef::named_nn_list_nn("StorefrontEventInput"),
                )
                .description("1 to 1,000 events."),
            ],
            |input| {
                let list = input.json("events")?.unwrap_or_default();
                Batch::parse("input.events", &list, Utc::now())
            },
            |ctx, batch| Box::pin(events::track(ctx, batch)),
            vec![
                Returned::Value(
                    "stored",
                    TypeRef::INT,
                    "How many events were stored now.",
                    |t: &Tracked| Some(GqlValue::from(t.stored)),
                ),
                Returned::Value(
                    "duplicates",
                    TypeRef::INT,
                    "How many were already stored (retries), and skipped.",
                    |t: &Tracked| Some(GqlValue::from(t.duplicates)),
                ),
            ],
        )
        .with_types(vec![event_input()]),
        declare(
            "performanceMetricsRecord",
            "Records a batch of 1 to 1,000 performance metrics of the shop's products in one \
             insert, as the shop, or as service_role naming the shop. A batch with any bad \
             metric is refused whole and nothing is written: `userErrors` names each bad \
             metric's index and field (`[\"input\", \"metrics\", \"3\", \"productId\"]`); \
             another shop's product is not found.",
            Right::Write,
            vec![
                shop_id(),
                InputValue::new(
                    "metrics",
                    TypeRef::named_nn_list_nn("PerformanceMetricInput"),
                )
                .description("1 to 1,000 metrics."),
            ],
            |input| {
                let list = input.json("metrics")?.unwrap_or_default();
                MetricBatch::parse("input.metrics", optional_shop(input)?, &list)
            },
            |ctx, batch| Box::pin(metrics::record(ctx, batch)),
            vec![Returned::Value(
                "recorded",
                TypeRef::INT,
                "How many metrics were recorded.",
                |r: &Recorded| Some(GqlValue::from(r.ids.len())),
            )],
        )
        .with_types(vec![metric_input()]),
    ]
}

/// One measurement of `performanceMetricsRecord`.
fn metric_input() -> InputObject {
    let field = |name: &str, ty: TypeRef, doc: &str| InputValue::new(name, ty).description(doc);
    InputObject::new("PerformanceMetricInput")
        .description("A measurement of one of the shop's products.")
        .field(field(
            "productId",
            TypeRef::named_nn(TypeRef::ID),
            "The product's global id.",
        ))
        .field(field(
            "metricType",
            TypeRef::named_nn(TypeRef::STRING),
            "What was measured: lower-case letters, digits and _, at most 64 (`views`, \
             `conversion_rate`).",
        ))
        .field(field(
            "value",
            TypeRef::named_nn("Decimal"),
            "The value: at most 14 digits before the decimal point and 6 after it.",
        ))
}

/// One storefront event of `eventsTrack`.
fn event_input() -> InputObject {
    let field = |name: &str, ty: TypeRef, doc: &str| InputValue::new(name, ty).description(doc);
    InputObject::new("StorefrontEventInput")
        .description("A storefront event.")
        .field(field(
            "id",
            TypeRef::named_nn(TypeRef::STRING),
            "The client's id of the event, 1 to 128 characters: a retry sends the same id and ts.",
        ))
        .field(field(
            "type",
            TypeRef::named_nn(TypeRef::STRING),
            "What happened: lower-case letters, digits and _ (`page_view`, `add_to_cart`, \
             `purchase`).",
        ))
        .field(field(
            "ts",
            TypeRef::named_nn("DateTime"),
            "When it happened (RFC 3339): within the last 7 days, at most a day ahead.",
        ))
        .field(field(
            "anonId",
            TypeRef::named_nn(TypeRef::STRING),
            "The anonymous visitor's id.",
        ))
        .field(field(
            "sessionId",
            TypeRef::named(TypeRef::STRING),
            "The visitor's session, if the storefront has one.",
        ))
        .field(field(
            "props",
            TypeRef::named("JSON"),
            "Details, an object of at most 4,096 bytes (url, value, currency...).",
        ))
        .field(field(
            "productId",
            TypeRef::named(TypeRef::STRING),
            "Shopify's id of the product concerned.",
        ))
        .field(field(
            "experimentId",
            TypeRef::named(TypeRef::ID),
            "The global id of the shop's experiment the event belongs to.",
        ))
        .field(field(
            "variant",
            TypeRef::named(TypeRef::STRING),
            "The experiment's variant the visitor saw.",
        ))
}

fn shop_id() -> InputValue {
    InputValue::new("shopId", TypeRef::named(TypeRef::ID))
        .description("The shop's global id: needed by service_role; a shop acts on itself.")
}

fn optional_shop(input: &Input<'_>) -> ApiResult<Option<Uuid>> {
    match input.get("shopId") {
        None => Ok(None),
        Some(_) => input.id("shopId", "Shop").map(Some),
    }
}

fn shop_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row("shop", "shops", |id| Some(*id))]
}

fn revision_id() -> InputValue {
    InputValue::new("id", TypeRef::named_nn(TypeRef::ID)).description("The revision's global id.")
}

fn revision_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row(
        "contentRevision",
        "content_revisions",
        |id| Some(*id),
    )]
}
