//! Shops: installed by the app's OAuth or token-exchange step (`service_role`), uninstalled
//! by the merchant (the `app/uninstalled` webhook, or `shopUninstall`), and their settings.
//! The access token is stored encrypted ([`ACCESS_TOKEN`]) and never read back here.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Expr, ExprTrait, LockType, OnConflict, Query};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use crate::auth::Principal;
use crate::crypto::{Column, Secret};
use crate::domains::{WriteCtx, invalid_transition};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// Where a shop's access token is kept, encrypted.
pub const ACCESS_TOKEN: Column = Column {
    table: "shops",
    name: "access_token_enc",
};

/// The longest access token, scope list or brand voice accepted, in characters.
const MAX_TOKEN: usize = 1_000;
const MAX_SCOPE: usize = 2_000;
const MAX_BRAND_VOICE: usize = 2_000;
/// `autopilot_limits`: at most this many limits.
const MAX_LIMITS: usize = 32;
/// `data_retention_days`' range.
pub const RETENTION_DAYS: std::ops::RangeInclusive<i64> = 1..=3650;
/// How many days of data a shop keeps when its settings do not say (seed 004's 90 days);
/// `STRATIX_EVENTS_RETENTION_DAYS` overrides it.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

/// How many days of its data a shop with these `settings` keeps: its
/// `data_retention_days`, or `default` when that is unset. The one rule retention follows.
pub fn retention_days(settings: &Json, default: u32) -> i64 {
    settings
        .get("data_retention_days")
        .and_then(Json::as_i64)
        .filter(|days| RETENTION_DAYS.contains(days))
        .unwrap_or(i64::from(default))
}

/// A shop being installed, checked.
#[derive(Clone, Debug)]
pub struct Installation {
    /// `<name>.myshopify.com`, lower-case.
    pub domain: String,
    /// The Admin API access token.
    pub access_token: Secret,
    /// The granted scopes, comma-separated.
    pub scope: Option<String>,
    /// The app plan.
    pub plan: String,
}

impl Installation {
    /// Checks the input's fields (`input.domain`, ...).
    pub fn parse(
        domain: &str,
        access_token: &str,
        scope: Option<&str>,
        plan: Option<&str>,
    ) -> ApiResult<Self> {
        let domain = domain.trim().to_ascii_lowercase();
        let name = domain.strip_suffix(".myshopify.com").unwrap_or_default();
        if name.is_empty()
            || name.len() > 60
            || name.starts_with('-')
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ApiError::refused(
                "input.domain",
                InputCode::Invalid,
                "must be the shop's <name>.myshopify.com domain",
            ));
        }
        if access_token.is_empty()
            || access_token.len() > MAX_TOKEN
            || !access_token.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(ApiError::refused(
                "input.accessToken",
                InputCode::Invalid,
                format!("must be 1 to {MAX_TOKEN} printable characters without spaces"),
            ));
        }
        let scope = match scope.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(scope) => {
                let scopes: Vec<&str> = scope.split(',').map(str::trim).collect();
                let valid = scope.len() <= MAX_SCOPE
                    && scopes.iter().all(|s| {
                        !s.is_empty()
                            && s.chars()
                                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '/')
                    });
                if !valid {
                    return Err(ApiError::refused(
                        "input.scope",
                        InputCode::Invalid,
                        "must be comma-separated access scopes, like read_products,write_products",
                    ));
                }
                Some(scopes.join(","))
            }
        };
        let plan = plan.map_or("starter", str::trim);
        if plan.is_empty() || plan.len() > 64 || !plan.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ApiError::refused(
                "input.plan",
                InputCode::Invalid,
                "must be 1 to 64 printable characters",
            ));
        }
        Ok(Self {
            domain,
            access_token: Secret::new(access_token.to_owned()),
            scope,
            plan: plan.to_owned(),
        })
    }
}

/// Installs a shop, or re-activates an uninstalled one (its settings and data kept), with
/// this token, scope and plan; returns `shops.id`. `service_role` only: the app's OAuth or
/// token-exchange step, which has verified the merchant with Shopify.
pub async fn install(ctx: &WriteCtx<'_>, shop: Installation) -> ApiResult<Uuid> {
    if !matches!(ctx.principal, Principal::Service) {
        return Err(ApiError::Forbidden(
            "shops are installed by the app's own backend (service_role)".to_owned(),
        ));
    }
    let token = ctx
        .encryption
        .encrypt(ACCESS_TOKEN, shop.access_token.expose().as_bytes())?;
    let now = chrono::Utc::now();
    let mut upsert = Query::insert();
    upsert
        .into_table("shops")
        .columns([
            "id",
            "domain",
            "access_token_enc",
            "scope",
            "plan",
            "installed_at",
        ])
        .values([
            Expr::val(Uuid::new_v4()),
            Expr::val(shop.domain),
            Expr::val(token),
            Expr::val(shop.scope),
            Expr::val(shop.plan),
            Expr::val(now),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .on_conflict(
            OnConflict::column("domain")
                .update_columns(["access_token_enc", "scope", "plan", "installed_at"])
                .value(
                    "uninstalled_at",
                    Expr::val(None::<chrono::DateTime<chrono::Utc>>),
                )
                .to_owned(),
        )
        .returning(Query::returning().column("id"));
    let row = ctx
        .db
        .query_one(&upsert)
        .await?
        .ok_or_else(|| ApiError::Internal("the shop upsert returned no row".to_owned()))?;
    let id: Uuid = row.try_get_by_index(0)?;
    ctx.outbox.record(Write::update("shops", id, Some(id)));
    Ok(id)
}

/// Whether an uninstall changed anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uninstalled {
    /// The shop was installed and is now uninstalled.
    Now,
    /// It was already uninstalled.
    Already,
}

/// Marks `shop` uninstalled (its session tokens and ingest key stop working; its data
/// stays until `shop/redact` or the retention). The `app/uninstalled` webhook and
/// `shopUninstall` both come here.
pub async fn uninstall(ctx: &WriteCtx<'_>, shop: Uuid) -> ApiResult<Uninstalled> {
    let mut update = Query::update();
    update
        .table("shops")
        .value("uninstalled_at", chrono::Utc::now())
        .and_where(Expr::col("id").eq(shop))
        .and_where(Expr::col("uninstalled_at").is_null());
    if ctx.db.execute(&update).await?.rows_affected() == 0 {
        return Ok(Uninstalled::Already);
    }
    ctx.outbox.record(Write::update("shops", shop, Some(shop)));
    Ok(Uninstalled::Now)
}

/// `shopUninstall`: the shop itself, or `service_role` naming it; an uninstalled shop is
/// `INVALID_TRANSITION`.
pub async fn uninstall_shop(ctx: &WriteCtx<'_>, shop: Option<Uuid>) -> ApiResult<Uuid> {
    let shop = writable_shop(ctx, shop).await?;
    match uninstall(ctx, shop).await? {
        Uninstalled::Now => Ok(shop),
        Uninstalled::Already => Err(invalid_transition("shop", "uninstalled", "be uninstalled")),
    }
}

/// The shop the caller acts for: its own (a session token), or the one it names in
/// `input.shopId` (which must be `service_role`'s, or the shop's own to be found); no one
/// else acts for a shop.
pub fn acting_shop(principal: &Principal, named: Option<Uuid>) -> ApiResult<Uuid> {
    match (principal, named) {
        (Principal::Shop { id }, None) => Ok(*id),
        (Principal::Shop { .. } | Principal::Service, Some(named)) => Ok(named),
        (Principal::Service, None) => Err(ApiError::refused(
            "input.shopId",
            InputCode::Blank,
            "service_role must name the shop",
        )),
        _ => Err(ApiError::Forbidden(
            "a shop's data is its own (a Shopify session token) or service_role's".to_owned(),
        )),
    }
}

/// The shop the caller writes ([`acting_shop`]), locked for the rest of the request;
/// `NOT_FOUND` on `input.shopId` when the caller may not write it.
async fn writable_shop(ctx: &WriteCtx<'_>, named: Option<Uuid>) -> ApiResult<Uuid> {
    let shop = acting_shop(ctx.principal, named)?;
    let shops = tables().named("shops")?;
    let mut select = Query::select();
    select
        .from(shops.name)
        .column("id")
        .and_where(Expr::col("id").eq(shop))
        .cond_where(ctx.scope.write_condition(shops)?)
        .lock(LockType::Update);
    match ctx.db.query_one(&select).await? {
        Some(_) => Ok(shop),
        None => Err(ApiError::refused(
            "input.shopId",
            InputCode::NotFound,
            "no such shop",
        )),
    }
}

/// Settings to change; what is not given stays as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    /// `shops.id` (`service_role` names the shop; a shop may omit it).
    pub shop: Option<Uuid>,
    /// `brand_voice`: how the AI writes for the shop, up to 2,000 characters.
    pub brand_voice: Option<String>,
    /// `autopilot_limits`: a JSON object of limit name to a whole number >= 0.
    pub autopilot_limits: Option<Map<String, Json>>,
    /// `data_retention_days`: 1 to 3650.
    pub data_retention_days: Option<i64>,
    /// `allow_write_products`: whether the apps may change the shop's products.
    pub allow_write_products: Option<bool>,
}

impl Settings {
    /// Checks the values given (`input.brandVoice`, ...).
    pub fn parse(
        shop: Option<Uuid>,
        brand_voice: Option<String>,
        autopilot_limits: Option<Json>,
        data_retention_days: Option<i64>,
        allow_write_products: Option<bool>,
    ) -> ApiResult<Self> {
        if brand_voice
            .as_ref()
            .is_some_and(|v| v.chars().count() > MAX_BRAND_VOICE)
        {
            return Err(ApiError::refused(
                "input.brandVoice",
                InputCode::TooLong,
                format!("must be at most {MAX_BRAND_VOICE} characters"),
            ));
        }
        let autopilot_limits = autopilot_limits.map(limits).transpose()?;
        if data_retention_days.is_some_and(|d| !RETENTION_DAYS.contains(&d)) {
            return Err(ApiError::refused(
                "input.dataRetentionDays",
                InputCode::Invalid,
                format!(
                    "must be {} to {} days",
                    RETENTION_DAYS.start(),
                    RETENTION_DAYS.end()
                ),
            ));
        }
        let settings = Self {
            shop,
            brand_voice,
            autopilot_limits,
            data_retention_days,
            allow_write_products,
        };
        if settings
            == (Self {
                shop,
                ..Self::default()
            })
        {
            return Err(ApiError::refused(
                "input",
                InputCode::Blank,
                "give at least one setting to change",
            ));
        }
        Ok(settings)
    }
}

/// `autopilot_limits`: an object of at most [`MAX_LIMITS`] names (1 to 64 of a-z, 0-9, _)
/// to whole numbers >= 0.
fn limits(value: Json) -> ApiResult<Map<String, Json>> {
    let refused = || {
        ApiError::refused(
            "input.autopilotLimits",
            InputCode::Invalid,
            format!(
                "must be an object of at most {MAX_LIMITS} limits, each a name (a-z, 0-9, _) \
                 and a whole number >= 0, like {{\"patches_per_day\": 5}}"
            ),
        )
    };
    let Json::Object(map) = value else {
        return Err(refused());
    };
    let valid = map.len() <= MAX_LIMITS
        && map.iter().all(|(name, limit)| {
            (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && limit.as_u64().is_some()
        });
    if valid { Ok(map) } else { Err(refused()) }
}

/// Changes the given settings of the caller's shop (or the one `service_role` names);
/// returns `shops.id`.
pub async fn update_settings(ctx: &WriteCtx<'_>, change: Settings) -> ApiResult<Uuid> {
    let shop = writable_shop(ctx, change.shop).await?;
    let mut select = Query::select();
    select
        .from("shops")
        .column("settings")
        .and_where(Expr::col("id").eq(shop));
    let current: Json = match ctx.db.query_one(&select).await? {
        Some(row) => row.try_get_by_index(0)?,
        None => return Err(ApiError::NotFound("shop".to_owned())),
    };
    let mut settings = match current {
        Json::Object(map) => map,
        _ => Map::new(),
    };
    let mut set = |key: &str, value: Option<Json>| {
        if let Some(value) = value {
            settings.insert(key.to_owned(), value);
        }
    };
    set("brand_voice", change.brand_voice.map(Json::from));
    set(
        "autopilot_limits",
        change.autopilot_limits.map(Json::Object),
    );
    set(
        "data_retention_days",
        change.data_retention_days.map(Json::from),
    );
    set(
        "allow_write_products",
        change.allow_write_products.map(Json::from),
    );
    let mut update = Query::update();
    update
        .table("shops")
        .value("settings", Json::Object(settings))
        .and_where(Expr::col("id").eq(shop));
    ctx.db.execute(&update).await?;
    ctx.outbox.record(Write::update("shops", shop, Some(shop)));
    Ok(shop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installations_are_checked() {
        let ok = Installation::parse(
            " Demo-1.myshopify.com",
            "shpat_x",
            Some("read_products, write_products"),
            None,
        )
        .unwrap();
        assert_eq!(ok.domain, "demo-1.myshopify.com");
        assert_eq!(ok.scope.as_deref(), Some("read_products,write_products"));
        assert_eq!(ok.plan, "starter");
        assert!(!format!("{ok:?}").contains("shpat_x"));
        for (domain, token, scope) in [
            ("demo.example.com", "t", None),
            (".myshopify.com", "t", None),
            ("a b.myshopify.com", "t", None),
            ("demo.myshopify.com", "", None),
            ("demo.myshopify.com", "has space", None),
            ("demo.myshopify.com", "t", Some("read products")),
            ("demo.myshopify.com", "t", Some("read_products,,")),
        ] {
            assert!(
                Installation::parse(domain, token, scope, None).is_err(),
                "{domain} {token} {scope:?}"
            );
        }
    }

    #[test]
    fn settings_are_checked() {
        let parse =
            |limits: Json, days: Option<i64>| Settings::parse(None, None, Some(limits), days, None);
        assert!(parse(serde_json::json!({"patches_per_day": 5}), Some(90)).is_ok());
        assert!(parse(serde_json::json!({"patches_per_day": -1}), None).is_err());
        assert!(parse(serde_json::json!({"Bad Name": 1}), None).is_err());
        assert!(parse(serde_json::json!([1]), None).is_err());
        assert!(parse(serde_json::json!({}), Some(0)).is_err());
        assert!(parse(serde_json::json!({}), Some(3651)).is_err());
        assert!(parse(serde_json::json!({}), Some(3650)).is_ok());
        assert!(Settings::parse(None, None, None, None, None).is_err());
        assert!(Settings::parse(None, Some("x".repeat(2001)), None, None, None).is_err());
    }

    #[test]
    fn a_shop_keeps_its_own_retention_or_the_default() {
        use serde_json::json;
        assert_eq!(
            retention_days(&json!({ "data_retention_days": 30 }), 90),
            30
        );
        assert_eq!(retention_days(&json!({}), 90), 90);
        assert_eq!(
            retention_days(&json!({ "data_retention_days": "30" }), 90),
            90
        );
        assert_eq!(retention_days(&json!({ "data_retention_days": 0 }), 45), 45);
    }
}
