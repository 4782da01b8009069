//! A world of two tenants of every kind, with rows in every table, for the isolation matrix.
//!
//! Users A and B each own rows in every user table; shops A and B in every shop table;
//! distributors A and B in every distributor table, with user A a member of distributor A
//! and user B of distributor B. Children hang under parents of the same tenant (the
//! composite foreign keys insist on it). On top of that the world holds rows that test the
//! walls rather than the happy path:
//!
//! - rows with no owner where the owner column is nullable (a global `ai_models` row, which
//!   every shop may read; a global `cache` entry, an `activity_logs` row and a `payments`
//!   row without a user, which no tenant may read);
//! - references the database allows across tenants because they are plain foreign keys:
//!   distributor B's audit trail and invitations name user A (a former member) and the
//!   other way round, and each tenant has a row pointing (through a `SET NULL` reference)
//!   at the other tenant's parent. The service refuses to write such references, but a
//!   read that follows one must still find nothing of the other tenant.

use std::collections::HashMap;

use migration::catalog::Tenant;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde_json::json;
use uuid::Uuid;

use super::app::{SHOPIFY_KEY, SHOPIFY_SECRET, TestApp};
use super::fixtures::{self, row};

/// One of the two tenants of each kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Tenant A.
    A,
    /// Tenant B.
    B,
}

impl Side {
    /// The other tenant.
    pub fn other(self) -> Self {
        match self {
            Self::A => Self::B,
            Self::B => Self::A,
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Self::A => "a",
            Self::B => "b",
        }
    }
}

/// The rows of one table, by owner.
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Rows owned by tenant A.
    pub a: Vec<Uuid>,
    /// Rows owned by tenant B.
    pub b: Vec<Uuid>,
    /// Rows whose (nullable) owner column is null.
    pub unowned: Vec<Uuid>,
}

impl Rows {
    /// The rows `side` owns.
    pub fn of(&self, side: Side) -> &[Uuid] {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }
}

/// One tenant of each kind.
#[derive(Clone, Debug)]
pub struct Tenants {
    /// `users.id`.
    pub user: Uuid,
    /// `shops.id`.
    pub shop: Uuid,
    /// The shop's domain (`x.myshopify.com`).
    pub shop_domain: String,
    /// `distributors.id`.
    pub distributor: Uuid,
}

/// Everything [`build`] made.
#[derive(Clone, Debug)]
pub struct World {
    /// Tenant A of each kind.
    pub a: Tenants,
    /// Tenant B of each kind.
    pub b: Tenants,
    /// Per table: which rows belong to A, to B, and to nobody.
    pub rows: HashMap<&'static str, Rows>,
}

impl World {
    /// The tenants of `side`.
    pub fn tenants(&self, side: Side) -> &Tenants {
        match side {
            Side::A => &self.a,
            Side::B => &self.b,
        }
    }

    /// The rows of `table` (empty when the world has none).
    pub fn rows(&self, table: &str) -> Rows {
        self.rows.get(table).cloned().unwrap_or_default()
    }

    fn add(&mut self, table: &'static str, side: Option<Side>, id: Uuid) {
        let rows = self.rows.entry(table).or_default();
        match side {
            Some(Side::A) => rows.a.push(id),
            Some(Side::B) => rows.b.push(id),
            None => rows.unowned.push(id),
        }
    }
}

/// A Shopify session token for `domain`, as App Bridge sends it to the app: HS256 with the
/// app's API secret, valid for a minute.
pub fn shop_session_token(domain: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({
        "iss": format!("https://{domain}/admin"),
        "dest": format!("https://{domain}"),
        "aud": SHOPIFY_KEY,
        "sub": "7001",
        "exp": now + 60,
        "nbf": now - 5,
        "iat": now - 5,
        "jti": Uuid::new_v4().to_string(),
        "sid": Uuid::new_v4().simple().to_string(),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SHOPIFY_SECRET),
    )
    .unwrap()
}

/// The ids of `table`'s rows whose `column` is `value`.
async fn ids_where(db: &DatabaseConnection, table: &str, column: &str, value: Uuid) -> Vec<Uuid> {
    let mut select = Query::select();
    select
        .column(Alias::new("id"))
        .from(Alias::new(table))
        .and_where(Expr::col(Alias::new(column)).eq(value));
    db.query_all(&select)
        .await
        .unwrap_or_else(|e| panic!("reading {table}: {e}"))
        .iter()
        .map(|r| r.try_get::<Uuid>("", "id").unwrap())
        .collect()
}

fn decimal(text: &str) -> Value {
    text.parse::<rust_decimal::Decimal>().unwrap().into()
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// What one tenant's parents are, for the cross-tenant references made afterwards.
struct Parents {
    recommendation: Uuid,
    customer: Uuid,
    conversation: Uuid,
    order: Uuid,
    catalog_product: Uuid,
    category: Uuid,
}

/// Inserts the world: rows for both tenants of each kind in every table.
pub async fn build(db: &DatabaseConnection) -> World {
    let mut world = World {
        a: tenants(Side::A),
        b: tenants(Side::B),
        rows: HashMap::new(),
    };
    let mut parents = HashMap::new();
    for side in [Side::A, Side::B] {
        let user = user_tables(db, &mut world, side).await;
        let shop = shop_tables(db, &mut world, side).await;
        let (distributor, distribution) = distributor_tables(db, &mut world, side, user).await;
        let tenants = match side {
            Side::A => &mut world.a,
            Side::B => &mut world.b,
        };
        tenants.user = user;
        tenants.shop = shop.0;
        tenants.distributor = distributor;
        parents.insert(
            side,
            Parents {
                recommendation: shop.1,
                ..distribution
            },
        );
    }
    for side in [Side::A, Side::B] {
        cross_references(db, &mut world, side, &parents[&side.other()]).await;
    }
    unowned(db, &mut world).await;
    world
}

fn tenants(side: Side) -> Tenants {
    Tenants {
        user: Uuid::nil(),
        shop: Uuid::nil(),
        shop_domain: format!("isolation-{}.myshopify.com", side.tag()),
        distributor: Uuid::nil(),
    }
}

/// The user and a row in every user table; returns the user's id.
async fn user_tables(db: &DatabaseConnection, world: &mut World, side: Side) -> Uuid {
    let tag = side.tag();
    let user = fixtures::user(db, &format!("user-{tag}@isolation.test")).await;
    let s = Some(side);
    world.add("users", s, user);
    // The new-user trigger's rows.
    for table in [
        "profiles",
        "credit_accounts",
        "credit_transactions",
        "notification_preferences",
    ] {
        let ids = ids_where(db, table, "user_id", user).await;
        assert!(!ids.is_empty(), "the new-user trigger made no {table} row");
        for id in ids {
            world.add(table, s, id);
        }
    }
    let owner = || ("user_id", Value::from(user));
    let id = row(
        db,
        "api_keys",
        vec![
            ("name", format!("key {tag}").into()),
            ("key_prefix", format!("sk_{tag}").into()),
            ("key_hash", format!("hash-{tag}-{}", Uuid::new_v4()).into()),
            owner(),
        ],
    )
    .await;
    world.add("api_keys", s, id);
    let id = row(
        db,
        "notifications",
        vec![
            ("type", "system".into()),
            ("title", format!("hello {tag}").into()),
            ("body", "body".into()),
            owner(),
        ],
    )
    .await;
    world.add("notifications", s, id);
    let id = row(
        db,
        "activity_logs",
        vec![
            ("log_type", "auth".into()),
            ("entity_id", user.into()),
            ("action", "sign_in".into()),
            owner(),
        ],
    )
    .await;
    world.add("activity_logs", s, id);
    let id = row(
        db,
        "usage_metrics",
        vec![
            ("date", today().into()),
            ("metric", "api_calls".into()),
            ("value", 7i64.into()),
            owner(),
        ],
    )
    .await;
    world.add("usage_metrics", s, id);
    let account = ids_where(db, "credit_accounts", "user_id", user).await[0];
    let id = row(
        db,
        "credit_transactions",
        vec![
            ("credit_account_id", account.into()),
            ("amount", (-5).into()),
            ("balance_after", 95.into()),
            ("kind", "usage".into()),
            owner(),
        ],
    )
    .await;
    world.add("credit_transactions", s, id);
    let id = row(
        db,
        "payments",
        vec![
            ("order_id", format!("order-{tag}").into()),
            ("amount", decimal("9.99")),
            owner(),
        ],
    )
    .await;
    world.add("payments", s, id);
    let project = row(
        db,
        "projects",
        vec![("name", format!("project {tag}").into()), owner()],
    )
    .await;
    world.add("projects", s, project);
    let job = row(
        db,
        "crawl_jobs",
        vec![
            ("project_id", project.into()),
            ("name", format!("job {tag}").into()),
            owner(),
        ],
    )
    .await;
    world.add("crawl_jobs", s, job);
    let id = row(
        db,
        "images",
        vec![
            ("crawl_job_id", job.into()),
            ("url", format!("https://img.test/{tag}.png").into()),
            ("source", "google".into()),
            owner(),
        ],
    )
    .await;
    world.add("images", s, id);
    let id = row(
        db,
        "crawl_chunks",
        vec![
            ("crawl_job_id", job.into()),
            ("position", 0.into()),
            ("first_image", 0.into()),
            ("max_images", 100.into()),
            owner(),
        ],
    )
    .await;
    world.add("crawl_chunks", s, id);
    let clone = row(
        db,
        "ai_clones",
        vec![
            ("name", format!("clone {tag}").into()),
            ("model_type", "gpt".into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_clones", s, clone);
    let id = row(
        db,
        "ai_tasks",
        vec![
            ("clone_id", clone.into()),
            ("task_name", format!("task {tag}").into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_tasks", s, id);
    user
}

/// The shop and a row in every shop table; returns the shop's id and a recommendation.
async fn shop_tables(db: &DatabaseConnection, world: &mut World, side: Side) -> (Uuid, Uuid) {
    let tag = side.tag();
    let s = Some(side);
    let shop = fixtures::shop(db, &world.tenants(side).shop_domain).await;
    world.add("shops", s, shop);
    let owner = || ("shop_id", Value::from(shop));
    let product = fixtures::product(db, shop, &format!("{tag}-1")).await;
    world.add("products", s, product);
    let id = fixtures::revision(db, shop, product, 1).await;
    world.add("content_revisions", s, id);
    let id = row(
        db,
        "performance_metrics",
        vec![
            ("product_id", product.into()),
            ("metric_type", "conversion_rate".into()),
            ("value", decimal("0.031")),
            owner(),
        ],
    )
    .await;
    world.add("performance_metrics", s, id);
    let id = row(
        db,
        "ai_models",
        vec![
            ("name", "copywriter".into()),
            ("version", format!("{tag}-1").into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_models", s, id);
    let id = row(
        db,
        "usage_logs",
        vec![
            ("endpoint", "/graphql".into()),
            ("method", "POST".into()),
            ("status_code", 200.into()),
            ("duration_ms", 12.into()),
            owner(),
        ],
    )
    .await;
    world.add("usage_logs", s, id);
    let id = row(
        db,
        "cache",
        vec![
            ("key", "theme".into()),
            ("value", json!({"tenant": tag}).into()),
            ("type", "json".into()),
            owner(),
        ],
    )
    .await;
    world.add("cache", s, id);
    let id = fixtures::event(db, shop, "page_view", chrono::Utc::now()).await;
    world.add("events", s, id);
    let id = row(
        db,
        "orders_cache",
        vec![
            ("order_id", format!("{tag}-1001").into()),
            ("total", decimal("42.00")),
            ("created_at", chrono::Utc::now().into()),
            owner(),
        ],
    )
    .await;
    world.add("orders_cache", s, id);
    let recommendation = row(
        db,
        "recommendations",
        vec![
            ("entity_type", "product".into()),
            ("entity_id", format!("{tag}-1").into()),
            ("category", "seo".into()),
            ("rule_id", "title_length".into()),
            ("severity", "low".into()),
            ("rationale", "too short".into()),
            ("patch_payload", json!({"title": "longer"}).into()),
            owner(),
        ],
    )
    .await;
    world.add("recommendations", s, recommendation);
    let id = row(
        db,
        "patches",
        vec![
            ("recommendation_id", recommendation.into()),
            ("applied_to", format!("product:{tag}-1").into()),
            ("payload", json!({"title": "new"}).into()),
            ("rollback_payload", json!({"title": "old"}).into()),
            owner(),
        ],
    )
    .await;
    world.add("patches", s, id);
    let experiment = fixtures::experiment(db, shop, &format!("experiment {tag}")).await;
    world.add("experiments", s, experiment);
    let id = row(
        db,
        "assignments",
        vec![
            ("experiment_id", experiment.into()),
            ("anon_id", "visitor".into()),
            ("session_id", "session".into()),
            ("variant", "b".into()),
            owner(),
        ],
    )
    .await;
    world.add("assignments", s, id);
    let id = fixtures::result(db, shop, experiment, "b", None, 1, "10.00").await;
    world.add("results_aggregates", s, id);
    (shop, recommendation)
}

/// The distributor, `user`'s membership, and a row in every distributor table.
async fn distributor_tables(
    db: &DatabaseConnection,
    world: &mut World,
    side: Side,
    user: Uuid,
) -> (Uuid, Parents) {
    let tag = side.tag();
    let s = Some(side);
    let distributor = row(
        db,
        "distributors",
        vec![
            ("name", format!("Distributor {tag}").into()),
            ("slug", format!("distributor-{tag}").into()),
        ],
    )
    .await;
    world.add("distributors", s, distributor);
    let owner = || ("distributor_id", Value::from(distributor));
    let id = row(
        db,
        "user_profiles",
        vec![("user_id", user.into()), ("role", "owner".into()), owner()],
    )
    .await;
    world.add("user_profiles", s, id);
    let id = row(
        db,
        "user_invitations",
        vec![
            ("email", format!("invitee-{tag}@isolation.test").into()),
            (
                "token_hash",
                format!("invite-{tag}-{}", Uuid::new_v4()).into(),
            ),
            ("invited_by", user.into()),
            (
                "expires_at",
                (chrono::Utc::now() + chrono::Duration::days(7)).into(),
            ),
            owner(),
        ],
    )
    .await;
    world.add("user_invitations", s, id);
    let customer = row(
        db,
        "customers",
        vec![
            ("name", format!("Customer {tag}").into()),
            ("whatsapp_id", format!("wa-{tag}").into()),
            owner(),
        ],
    )
    .await;
    world.add("customers", s, customer);
    let id = row(
        db,
        "customer_labels",
        vec![
            ("customer_id", customer.into()),
            ("label", "vip".into()),
            owner(),
        ],
    )
    .await;
    world.add("customer_labels", s, id);
    let conversation = row(
        db,
        "conversations",
        vec![
            ("customer_id", customer.into()),
            ("channel", "whatsapp".into()),
            owner(),
        ],
    )
    .await;
    world.add("conversations", s, conversation);
    let message = row(
        db,
        "messages",
        vec![
            ("conversation_id", conversation.into()),
            ("customer_id", customer.into()),
            ("direction", "inbound".into()),
            ("channel", "whatsapp".into()),
            ("body", "10 boxes please".into()),
            owner(),
        ],
    )
    .await;
    world.add("messages", s, message);
    let category = row(
        db,
        "product_categories",
        vec![("name", format!("Category {tag}").into()), owner()],
    )
    .await;
    world.add("product_categories", s, category);
    let id = row(
        db,
        "product_categories",
        vec![
            ("name", format!("Subcategory {tag}").into()),
            ("parent_id", category.into()),
            owner(),
        ],
    )
    .await;
    world.add("product_categories", s, id);
    let catalog_product = row(
        db,
        "catalog_products",
        vec![
            ("sku", format!("SKU-{tag}").into()),
            ("name", "Box".into()),
            ("price", decimal("3.50")),
            ("category_id", category.into()),
            owner(),
        ],
    )
    .await;
    world.add("catalog_products", s, catalog_product);
    let order = row(
        db,
        "orders",
        vec![
            ("customer_id", customer.into()),
            ("conversation_id", conversation.into()),
            ("order_number", format!("SO-{tag}-1").into()),
            owner(),
        ],
    )
    .await;
    world.add("orders", s, order);
    let id = row(
        db,
        "order_products",
        vec![
            ("order_id", order.into()),
            ("catalog_product_id", catalog_product.into()),
            ("product_name", "Box".into()),
            ("quantity", decimal("10")),
            ("unit_price", decimal("3.50")),
            ("line_total", decimal("35.00")),
            owner(),
        ],
    )
    .await;
    world.add("order_products", s, id);
    let id = row(
        db,
        "ai_responses",
        vec![
            ("message_id", message.into()),
            ("model", "gpt-4o-mini".into()),
            ("order_id", order.into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_responses", s, id);
    let id = row(
        db,
        "pii_detections",
        vec![
            ("message_id", message.into()),
            ("kind", "phone".into()),
            ("location", json!({"start": 0, "end": 5}).into()),
            owner(),
        ],
    )
    .await;
    world.add("pii_detections", s, id);
    let id = row(
        db,
        "ai_usage_metrics",
        vec![
            ("date", today().into()),
            ("model", "gpt-4o-mini".into()),
            ("feature", "order_extraction".into()),
            ("requests", 3.into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_usage_metrics", s, id);
    let endpoint = row(
        db,
        "webhook_endpoints",
        vec![
            ("url", format!("https://hooks.test/{tag}").into()),
            ("secret_enc", vec![9u8, 9, 9].into()),
            owner(),
        ],
    )
    .await;
    world.add("webhook_endpoints", s, endpoint);
    let id = row(
        db,
        "webhook_deliveries",
        vec![
            ("endpoint_id", endpoint.into()),
            ("event", "order.created".into()),
            ("payload", json!({"order": tag}).into()),
            owner(),
        ],
    )
    .await;
    world.add("webhook_deliveries", s, id);
    let id = row(
        db,
        "external_integrations",
        vec![("provider", "twilio".into()), owner()],
    )
    .await;
    world.add("external_integrations", s, id);
    let id = row(
        db,
        "data_access_audits",
        vec![
            ("user_id", user.into()),
            ("action", "read".into()),
            ("table_name", "customers".into()),
            ("record_id", customer.into()),
            owner(),
        ],
    )
    .await;
    world.add("data_access_audits", s, id);
    let parents = Parents {
        recommendation: Uuid::nil(),
        customer,
        conversation,
        order,
        catalog_product,
        category,
    };
    (distributor, parents)
}

/// Rows of `side` that reference the other tenant through plain foreign keys.
async fn cross_references(
    db: &DatabaseConnection,
    world: &mut World,
    side: Side,
    theirs: &Parents,
) {
    let tag = side.tag();
    let s = Some(side);
    let other = world.tenants(side.other()).clone();
    let mine = world.tenants(side).clone();
    // A former member of the other distributor: named in its audit trail and invitations.
    let id = row(
        db,
        "data_access_audits",
        vec![
            ("user_id", other.user.into()),
            ("action", "export".into()),
            ("table_name", "orders".into()),
            ("distributor_id", mine.distributor.into()),
        ],
    )
    .await;
    world.add("data_access_audits", s, id);
    let id = row(
        db,
        "user_invitations",
        vec![
            ("email", format!("second-{tag}@isolation.test").into()),
            (
                "token_hash",
                format!("invite2-{tag}-{}", Uuid::new_v4()).into(),
            ),
            ("invited_by", other.user.into()),
            (
                "expires_at",
                (chrono::Utc::now() + chrono::Duration::days(7)).into(),
            ),
            ("distributor_id", mine.distributor.into()),
        ],
    )
    .await;
    world.add("user_invitations", s, id);
    // Same-kind references the service would refuse but the database holds.
    let id = row(
        db,
        "patches",
        vec![
            ("recommendation_id", theirs.recommendation.into()),
            ("applied_to", format!("product:{tag}-stray").into()),
            ("payload", json!({}).into()),
            ("rollback_payload", json!({}).into()),
            ("shop_id", mine.shop.into()),
        ],
    )
    .await;
    world.add("patches", s, id);
    let owner = || ("distributor_id", Value::from(mine.distributor));
    let category = row(
        db,
        "product_categories",
        vec![
            ("name", format!("Stray {tag}").into()),
            ("parent_id", theirs.category.into()),
            owner(),
        ],
    )
    .await;
    world.add("product_categories", s, category);
    let catalog_product = row(
        db,
        "catalog_products",
        vec![
            ("sku", format!("STRAY-{tag}").into()),
            ("name", "Stray".into()),
            ("price", decimal("1.00")),
            ("category_id", theirs.category.into()),
            owner(),
        ],
    )
    .await;
    world.add("catalog_products", s, catalog_product);
    let my_customer = world.rows("customers").of(side)[0];
    let my_conversation = world.rows("conversations").of(side)[0];
    let message = row(
        db,
        "messages",
        vec![
            ("conversation_id", my_conversation.into()),
            ("customer_id", theirs.customer.into()),
            ("direction", "outbound".into()),
            ("channel", "sms".into()),
            owner(),
        ],
    )
    .await;
    world.add("messages", s, message);
    let order = row(
        db,
        "orders",
        vec![
            ("customer_id", my_customer.into()),
            ("conversation_id", theirs.conversation.into()),
            ("order_number", format!("SO-{tag}-stray").into()),
            owner(),
        ],
    )
    .await;
    world.add("orders", s, order);
    let id = row(
        db,
        "order_products",
        vec![
            ("order_id", order.into()),
            ("catalog_product_id", theirs.catalog_product.into()),
            ("product_name", "Stray".into()),
            ("quantity", decimal("1")),
            ("unit_price", decimal("1.00")),
            ("line_total", decimal("1.00")),
            owner(),
        ],
    )
    .await;
    world.add("order_products", s, id);
    let id = row(
        db,
        "ai_responses",
        vec![
            ("message_id", message.into()),
            ("model", "gpt-4o-mini".into()),
            ("order_id", theirs.order.into()),
            owner(),
        ],
    )
    .await;
    world.add("ai_responses", s, id);
}

/// Rows whose nullable owner column is null.
async fn unowned(db: &DatabaseConnection, world: &mut World) {
    let id = row(
        db,
        "ai_models",
        vec![("name", "copywriter".into()), ("version", "global".into())],
    )
    .await;
    world.add("ai_models", None, id);
    let id = row(
        db,
        "cache",
        vec![
            ("key", "theme".into()),
            ("value", json!({"tenant": null}).into()),
            ("type", "json".into()),
        ],
    )
    .await;
    world.add("cache", None, id);
    let id = row(
        db,
        "activity_logs",
        vec![
            ("log_type", "system".into()),
            ("entity_id", Uuid::new_v4().into()),
            ("action", "maintenance".into()),
        ],
    )
    .await;
    world.add("activity_logs", None, id);
    let id = row(
        db,
        "payments",
        vec![
            ("order_id", "order-orphan".into()),
            ("amount", decimal("1.00")),
        ],
    )
    .await;
    world.add("payments", None, id);
}

/// The kind of principal a request is made as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A user JWT: user and distributor tables.
    User,
    /// A Shopify session token: shop tables.
    Shop,
}

impl Kind {
    /// Who reads rows of a table owned by `tenant`.
    pub fn reading(tenant: Tenant) -> Self {
        match tenant {
            Tenant::User | Tenant::Distributor => Self::User,
            Tenant::Shop => Self::Shop,
        }
    }

    pub fn other(self) -> Self {
        match self {
            Self::User => Self::Shop,
            Self::Shop => Self::User,
        }
    }
}

/// A fresh token for `side`'s principal of `kind`.
pub fn token(world: &World, side: Side, kind: Kind) -> String {
    let tenants = world.tenants(side);
    match kind {
        Kind::User => TestApp::token("authenticated", &tenants.user.to_string()),
        Kind::Shop => shop_session_token(&tenants.shop_domain),
    }
}
