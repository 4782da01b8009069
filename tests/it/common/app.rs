//! The production router over a test database, driven in-process.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt as _;

use super::TestDb;

/// The secret test user tokens are signed with.
pub const SECRET: &[u8] = b"test-secret-for-stratix";
/// The Shopify app's API key in tests.
pub const SHOPIFY_KEY: &str = "test-shopify-api-key";
/// The Shopify app's API secret in tests.
pub const SHOPIFY_SECRET: &[u8] = b"test-shopify-api-secret";
/// The payment provider's webhook secret.
pub const PAYMENTS_SECRET: &[u8] = b"test-payments-webhook-secret";
/// The key secrets are encrypted under in tests (`STRATIX_ENCRYPTION_KEY`, base64 of
/// `test-encryption-key-for-stratix!`).
pub const ENCRYPTION_KEY: &str = "dGVzdC1lbmNyeXB0aW9uLWtleS1mb3Itc3RyYXRpeCE=";

/// The key ring of [`ENCRYPTION_KEY`].
pub fn encryption() -> api::crypto::KeyRing {
    api::crypto::KeyRing::new(
        api::crypto::Key::from_base64(ENCRYPTION_KEY).unwrap(),
        Vec::new(),
    )
}

/// The payment provider's callback `{event, orderId}` to `/webhooks/payments`, signed
/// with `secret`.
pub fn payment_callback(secret: &[u8], event: &str, order: &str) -> Request<Body> {
    let body = json!({ "event": event, "orderId": order }).to_string();
    Request::post("/webhooks/payments")
        .header("content-type", "application/json")
        .header(
            api::webhooks::payments::SIGNATURE_HEADER,
            api::webhooks::sign(secret, body.as_bytes()),
        )
        .body(Body::from(body))
        .unwrap()
}

/// The app under test: the real router, the real schema, a fresh database.
pub struct TestApp {
    /// The database (migrated).
    pub t: TestDb,
    /// The app's compiled read plans (to see which requests they answered).
    pub plans: std::sync::Arc<api::graphql::plan::PlanCache>,
    /// The app's count of API requests, not yet written.
    pub usage: api::domains::accounts::usage::RequestMeter,
    /// The app's data access audits, not yet written.
    pub audits: api::domains::distribution::audits::AuditLog,
    /// The app's shops' usage logs, not yet written.
    pub usage_logs: api::domains::shopify::usage::UsageLogs,
    router: Router,
}

/// A GraphQL response: status, body.
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: Value,
    /// The response headers.
    pub headers: axum::http::HeaderMap,
}

impl Reply {
    /// `data`, after asserting there are no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The first error's `extensions.code`.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
    }

    /// The first error's `extensions.limit`: the limit a request was over.
    pub fn limit(&self) -> &str {
        self.body["errors"][0]["extensions"]["limit"]
            .as_str()
            .unwrap_or_default()
    }

    /// The first error's message.
    pub fn message(&self) -> &str {
        self.body["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
    }

    /// How many SQL statements the request ran.
    pub fn statements(&self) -> u64 {
        self.body["extensions"]["sqlStatements"]
            .as_u64()
            .unwrap_or(u64::MAX)
    }
}

impl TestApp {
    /// Migrates `t` and builds the app over it.
    pub async fn new(t: TestDb) -> Self {
        Self::with_api_scoping(t, true).await
    }

    /// Like [`TestApp::new`], with `AppState::api_scoping` set: off, only PostgreSQL's
    /// row-level security stands between tenants.
    pub async fn with_api_scoping(t: TestDb, api_scoping: bool) -> Self {
        Self::build(t, api_scoping, super::options()).await
    }

    /// Like [`TestApp::new`], with these options (limits, switches).
    pub async fn with_options(t: TestDb, options: api::state::Options) -> Self {
        Self::build(t, true, options).await
    }

    async fn build(t: TestDb, api_scoping: bool, options: api::state::Options) -> Self {
        let t = t.migrated().await;
        let mut state = api::build_state_with(t.db.clone(), Self::keys(), options).unwrap();
        state.api_scoping = api_scoping;
        Self {
            t,
            plans: state.plans.clone(),
            usage: state.usage.clone(),
            audits: state.audits.clone(),
            usage_logs: state.usage_logs.clone(),
            router: api::router(state),
        }
    }

    /// The keys test credentials are signed with.
    fn keys() -> api::auth::Keys {
        api::auth::Keys {
            user: api::auth::jwt::UserKeys {
                secret: SECRET.to_vec(),
                jwks: Some(
                    serde_json::from_str::<jsonwebtoken::jwk::JwkSet>(include_str!(
                        "../keys/jwks.json"
                    ))
                    .unwrap()
                    .into(),
                ),
            },
            shopify: api::auth::shopify::ShopifyKeys {
                api_key: SHOPIFY_KEY.to_owned(),
                api_secret: SHOPIFY_SECRET.to_vec(),
            },
            payments_webhook: PAYMENTS_SECRET.to_vec(),
            encryption: encryption(),
        }
    }

    /// Another instance of the service on the same database, with its own pool (as a
    /// second server process would be).
    pub async fn another_instance(&self) -> Self {
        let db = api::db::connect(&self.t.url).await.unwrap();
        let state = api::build_state_with(db.clone(), Self::keys(), super::options()).unwrap();
        Self {
            t: TestDb::attached(db, self.t.url.clone()),
            plans: state.plans.clone(),
            usage: state.usage.clone(),
            audits: state.audits.clone(),
            usage_logs: state.usage_logs.clone(),
            router: api::router(state),
        }
    }

    /// A token with `role` and `sub`, valid for an hour.
    pub fn token(role: &str, sub: &str) -> String {
        let now = chrono::Utc::now();
        let claims = api::auth::jwt::Claims {
            sub: sub.to_owned(),
            role: role.to_owned(),
            aud: api::auth::jwt::AUDIENCE.to_owned(),
            exp: (now + chrono::Duration::hours(1)).timestamp(),
            iat: Some(now.timestamp()),
            nbf: None,
        };
        api::auth::jwt::mint(SECRET, &claims).unwrap()
    }

    /// A Shopify session token for `domain`, as App Bridge would send it; `edit` may change
    /// the claims first.
    pub fn shop_token_with(domain: &str, secret: &[u8], edit: impl FnOnce(&mut Value)) -> String {
        let now = chrono::Utc::now().timestamp();
        let mut claims = json!({
            "iss": format!("https://{domain}/admin"),
            "dest": format!("https://{domain}"),
            "aud": SHOPIFY_KEY,
            "sub": "42",
            "exp": now + 60,
            "nbf": now - 5,
            "iat": now - 5,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sid": "session",
        });
        edit(&mut claims);
        let key = jsonwebtoken::EncodingKey::from_secret(secret);
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .unwrap()
    }

    /// A valid Shopify session token for `domain`.
    pub fn shop_token(domain: &str) -> String {
        Self::shop_token_with(domain, SHOPIFY_SECRET, |_| {})
    }

    /// A `service_role` token.
    pub fn service() -> String {
        Self::token("service_role", "service")
    }

    /// Sends one HTTP request to the router.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    /// Sends one HTTP request to the router; the whole response, its body read.
    pub async fn send_raw(&self, request: Request<Body>) -> (axum::http::response::Parts, String) {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap();
        (parts, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// POSTs a GraphQL operation with an optional bearer token.
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let mut request = Request::post("/graphql").header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = json!({ "query": query, "variables": variables }).to_string();
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    /// POSTs [`payment_callback`].
    pub async fn payment_callback(&self, secret: &[u8], event: &str, order: &str) -> Reply {
        self.send(payment_callback(secret, event, order)).await
    }

    /// The balance and the sum of the ledger of `user`'s account, as `service_role` reads them.
    pub async fn balance_and_ledger(&self, user: uuid::Uuid) -> (i64, i64) {
        let reply = self
            .query(
                "query($u: UUID!) { creditAccounts(filter: {userId: {eq: $u}}) { nodes { balance } }
                   creditTransactions(filter: {userId: {eq: $u}}) { aggregate { sum { amount } } } }",
                json!({ "u": user }),
            )
            .await;
        let data = reply.data();
        let balance = data["creditAccounts"]["nodes"][0]["balance"]
            .as_i64()
            .unwrap();
        let sum = &data["creditTransactions"]["aggregate"]["sum"]["amount"];
        let sum = sum
            .as_i64()
            .or_else(|| sum.as_str().and_then(|s| s.parse().ok()))
            .unwrap();
        (balance, sum)
    }

    /// POSTs a GraphQL operation as `service_role`.
    pub async fn query(&self, query: &str, variables: Value) -> Reply {
        self.graphql(Some(&Self::service()), query, variables).await
    }

    /// Every scalar field of `table`'s rows with these ids, as `service_role` reads them:
    /// compared before and after a refused write, it shows nothing changed.
    pub async fn snapshot(
        &self,
        table: &api::tables::Table,
        ids: &std::collections::BTreeSet<uuid::Uuid>,
    ) -> Value {
        use api::graphql::names;
        let reply = self
            .query(
                "query($t: String!) { __type(name: $t) { fields { name args { name } type { kind ofType { kind } } } } }",
                json!({ "t": names::type_name(table.name) }),
            )
            .await;
        let fields: Vec<String> = reply.body["data"]["__type"]["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| {
                let ty = &f["type"];
                let base = if ty["kind"] == "NON_NULL" {
                    &ty["ofType"]
                } else {
                    ty
                };
                f["args"] == json!([]) && base["kind"] == "SCALAR"
            })
            .filter_map(|f| f["name"].as_str().map(str::to_owned))
            .collect();
        assert!(!fields.is_empty(), "{}: no scalar fields", table.name);
        let query = format!(
            "query($ids: [UUID!]) {{ {}(first: 250, filter: {{rowId: {{in: $ids}}}}, orderBy: [{{field: ID}}]) {{ nodes {{ {} }} }} }}",
            names::camel(table.name),
            fields.join(" ")
        );
        let reply = self.query(&query, json!({ "ids": ids })).await;
        assert!(
            reply.body.get("errors").is_none(),
            "snapshot of {}: {}",
            table.name,
            reply.body
        );
        reply.body["data"].clone()
    }
}
