//! Typed configuration, read once at start-up from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::state::Options;

/// The embedded default: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://stratix.db?mode=rwc";

/// Where `serve` listens unless `STRATIX_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The service's configuration. Its `Debug` shows no secret (see below).
#[derive(Clone)]
pub struct Config {
    /// `DATABASE_URL`: `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// `DATABASE_POOL_SIZE`: the most connections the pool opens (default: 8 on SQLite,
    /// twice the cores on PostgreSQL, at least 4).
    pub database_pool_size: Option<u32>,
    /// `STRATIX_LISTEN`: the address `serve` binds.
    pub listen: SocketAddr,
    /// `JWT_SECRET`: the HS256 secret user tokens are signed with. Unset means development
    /// mode: a random secret for this process, printed with a ready token.
    pub jwt_secret: Option<String>,
    /// `JWT_JWKS`: where the JSON Web Key Set with the ES256/RS256 keys user tokens may be
    /// signed with is (Supabase's asymmetric signing keys): a file path, or an `http(s)://`
    /// URL such as `https://<project>.supabase.co/auth/v1/.well-known/jwks.json`.
    pub jwt_jwks: Option<String>,
    /// `SHOPIFY_API_KEY`: the app's API key, the audience of Shopify session tokens.
    pub shopify_api_key: Option<String>,
    /// `SHOPIFY_API_SECRET`: the app's API secret, which signs Shopify session tokens.
    pub shopify_api_secret: Option<String>,
    /// `PAYMENTS_WEBHOOK_SECRET`: the key the payment provider signs its callbacks with.
    pub payments_webhook_secret: Option<String>,
    /// Limits and switches (`STRATIX_MAX_*`, `STRATIX_*_TIMEOUT_MS`, `STRATIX_CORS_ORIGINS`,
    /// `STRATIX_INTROSPECTION`, `STRATIX_GRAPHIQL`); development mode is decided by `serve`.
    pub options: Options,
}

/// Secrets are never printed: the database URL without its password, the keys as whether
/// they are set.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |secret: &Option<String>| secret.as_ref().map(|_| "<set>");
        f.debug_struct("Config")
            .field("database_url", &crate::redact(&self.database_url))
            .field("database_pool_size", &self.database_pool_size)
            .field("listen", &self.listen)
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("jwt_jwks", &self.jwt_jwks)
            .field("shopify_api_key", &self.shopify_api_key)
            .field("shopify_api_secret", &set(&self.shopify_api_secret))
            .field(
                "payments_webhook_secret",
                &set(&self.payments_webhook_secret),
            )
            .field("options", &self.options)
            .finish()
    }
}

/// Reads `name` as a positive number, or `None` when unset.
fn positive<T: std::str::FromStr + PartialOrd + Default>(name: &str) -> anyhow::Result<Option<T>> {
    let Some(text) = std::env::var(name).ok().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    match text.parse::<T>() {
        Ok(value) if value > T::default() => Ok(Some(value)),
        _ => anyhow::bail!("{name}={text:?} is not a positive integer"),
    }
}

/// Reads `name` as a boolean (`true`/`false`, `1`/`0`, `on`/`off`), or `default`.
fn switch(name: &str, default: bool) -> anyhow::Result<bool> {
    match std::env::var(name)
        .ok()
        .filter(|s| !s.is_empty())
        .as_deref()
    {
        None => Ok(default),
        Some("true" | "1" | "on" | "yes") => Ok(true),
        Some("false" | "0" | "off" | "no") => Ok(false),
        Some(other) => anyhow::bail!("{name}={other:?} is not true or false"),
    }
}

/// The options from the environment, over the defaults.
fn options_from_env() -> anyhow::Result<Options> {
    let mut options = Options::default();
    let limits = &mut options.limits;
    let sizes: [(&str, &mut usize); 6] = [
        ("STRATIX_MAX_BODY_BYTES", &mut limits.max_body_bytes),
        (
            "STRATIX_MAX_VARIABLES_BYTES",
            &mut limits.max_variables_bytes,
        ),
        ("STRATIX_MAX_DOCUMENT_BYTES", &mut limits.max_document_bytes),
        ("STRATIX_MAX_TOKENS", &mut limits.max_tokens),
        (
            "STRATIX_MAX_SUBSCRIPTIONS_PER_CONNECTION",
            &mut limits.max_subscriptions_per_connection,
        ),
        (
            "STRATIX_MAX_SUBSCRIPTIONS_PER_PRINCIPAL",
            &mut limits.max_subscriptions_per_principal,
        ),
    ];
    for (name, value) in sizes {
        if let Some(set) = positive(name)? {
            *value = set;
        }
    }
    if let Some(ms) = positive("STRATIX_STATEMENT_TIMEOUT_MS")? {
        limits.statement_timeout = Duration::from_millis(ms);
    }
    if let Some(ms) = positive("STRATIX_REQUEST_TIMEOUT_MS")? {
        limits.request_timeout = Duration::from_millis(ms);
    }
    options.cors_origins = std::env::var("STRATIX_CORS_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|origin| !origin.is_empty())
        .map(str::to_owned)
        .collect();
    options.introspection = switch("STRATIX_INTROSPECTION", true)?;
    options.graphiql = switch("STRATIX_GRAPHIQL", true)?;
    Ok(options)
}

impl Config {
    /// Reads the configuration from the environment, falling back to the defaults.
    pub fn from_env() -> anyhow::Result<Self> {
        let database_url =
            std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
        let listen = std::env::var("STRATIX_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
        let listen = listen
            .parse()
            .with_context(|| format!("STRATIX_LISTEN={listen:?} is not a socket address"))?;
        let var = |name: &str| std::env::var(name).ok().filter(|s| !s.is_empty());
        let database_pool_size = var("DATABASE_POOL_SIZE")
            .map(|size| match size.parse() {
                Ok(size) if size > 0 => Ok(size),
                _ => anyhow::bail!("DATABASE_POOL_SIZE={size:?} is not a positive integer"),
            })
            .transpose()?;
        Ok(Self {
            database_url,
            database_pool_size,
            listen,
            jwt_secret: var("JWT_SECRET"),
            jwt_jwks: var("JWT_JWKS"),
            shopify_api_key: var("SHOPIFY_API_KEY"),
            shopify_api_secret: var("SHOPIFY_API_SECRET"),
            payments_webhook_secret: var("PAYMENTS_WEBHOOK_SECRET"),
            options: options_from_env()?,
        })
    }

    /// Whether any key for user tokens is configured (`JWT_SECRET` or `JWT_JWKS`); without
    /// one the service runs in development mode, which only SQLite allows.
    pub fn has_user_keys(&self) -> bool {
        self.jwt_secret.is_some() || self.jwt_jwks.is_some()
    }

    /// The keys credentials are verified with; without `JWT_SECRET`, `development` supplies
    /// a secret.
    pub async fn keys(&self, development: Option<&str>) -> anyhow::Result<crate::auth::Keys> {
        let jwks = match &self.jwt_jwks {
            None => None,
            Some(location) => Some(load_jwks(location).await?),
        };
        let secret = self
            .jwt_secret
            .as_deref()
            .or(development)
            .unwrap_or_default();
        Ok(crate::auth::Keys {
            user: crate::auth::jwt::UserKeys {
                secret: secret.as_bytes().to_vec(),
                jwks,
            },
            shopify: crate::auth::shopify::ShopifyKeys {
                api_key: self.shopify_api_key.clone().unwrap_or_default(),
                api_secret: self
                    .shopify_api_secret
                    .clone()
                    .unwrap_or_default()
                    .into_bytes(),
            },
            payments_webhook: self
                .payments_webhook_secret
                .clone()
                .unwrap_or_default()
                .into_bytes(),
        })
    }
}

/// Reads a JSON Web Key Set from a file path or an `http(s)://` URL.
pub async fn load_jwks(location: &str) -> anyhow::Result<jsonwebtoken::jwk::JwkSet> {
    let text = if location.starts_with("http://") || location.starts_with("https://") {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?
            .get(location)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .with_context(|| format!("fetching JWT_JWKS {location}"))?
            .text()
            .await
            .with_context(|| format!("reading JWT_JWKS {location}"))?
    } else {
        tokio::fs::read_to_string(location)
            .await
            .with_context(|| format!("reading JWT_JWKS {location}"))?
    };
    serde_json::from_str(&text).with_context(|| format!("JWT_JWKS {location} is not a JWK set"))
}
