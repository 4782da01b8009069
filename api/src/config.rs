//! Typed configuration, read once at start-up from the environment.

use std::net::SocketAddr;

use anyhow::Context as _;

/// The embedded default: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://stratix.db?mode=rwc";

/// Where `serve` listens unless `STRATIX_LISTEN` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The service's configuration.
#[derive(Clone, Debug)]
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
        })
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
