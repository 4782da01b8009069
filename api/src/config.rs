//! Typed configuration, read once at start-up from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

use crate::state::Options;

/// The embedded default: a SQLite file in the working directory, created on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://stratix.db?mode=rwc";

/// Where `serve` listens unless `STRATIX_LISTEN` or `PORT` says otherwise.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8080,
));

/// The database to work on: every command that touches one takes these. Its `Debug`
/// shows the URL without its password.
#[derive(Clone, clap::Args)]
pub struct DatabaseConfig {
    /// The database: `sqlite://FILE?mode=rwc` or `postgres://user:password@host/db`.
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true)]
    pub url: String,
    /// The most pooled connections; past it requests wait their turn [default: 8 on SQLite;
    /// twice the cores, at least 4, on PostgreSQL].
    #[arg(long = "database-pool-size", env = "DATABASE_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..))]
    pub pool_size: Option<u32>,
}

impl DatabaseConfig {
    /// Opens a pool on the database.
    pub async fn connect(&self) -> anyhow::Result<sea_orm::DatabaseConnection> {
        crate::db::connect_with(&self.url, self.pool_size)
            .await
            .with_context(|| format!("cannot open the database at {}", crate::redact(&self.url)))
    }

    /// Opens one connection, for migrations (see [`crate::db::connect_for_migrations`]).
    pub async fn connect_for_migrations(&self) -> anyhow::Result<sea_orm::DatabaseConnection> {
        crate::db::connect_for_migrations(&self.url)
            .await
            .with_context(|| format!("cannot open the database at {}", crate::redact(&self.url)))
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::redact(&self.url))
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// The service's configuration: every setting of `stratix serve`, each from a flag or its
/// environment variable (`stratix serve --help` lists them with their defaults). Its
/// `Debug` shows no secret (see below).
#[derive(Clone, clap::Args)]
pub struct Config {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// The address to serve on [default: 127.0.0.1:8080, or 0.0.0.0:$PORT when PORT is set].
    #[arg(long, env = "STRATIX_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The port to serve on (all interfaces) when STRATIX_LISTEN is unset, as platforms
    /// that assign ports expect.
    #[arg(long, env = "PORT")]
    pub port: Option<u16>,
    /// Serve `/metrics` on this address instead of the API's (keeps it off a public port).
    #[arg(long, env = "STRATIX_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// How long in-flight requests may take to finish at shutdown: 30s, 2m, ...
    #[arg(long, env = "STRATIX_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// The HS256 secret user JWTs are signed with (Supabase's JWT secret). Unset means
    /// development mode: a random secret for this process, printed with a ready token.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// A JSON Web Key Set (file path, read at start, or http(s):// URL, fetched at start,
    /// every 10 minutes and on an unknown kid) with the ES256/RS256 keys user JWTs may be
    /// signed with, e.g.
    /// https://<project>.supabase.co/auth/v1/.well-known/jwks.json.
    #[arg(long, env = "JWT_JWKS")]
    pub jwt_jwks: Option<String>,
    /// The Shopify app's API key: the audience of session tokens.
    #[arg(long, env = "SHOPIFY_API_KEY")]
    pub shopify_api_key: Option<String>,
    /// The Shopify app's API secret, which signs session tokens.
    #[arg(long, env = "SHOPIFY_API_SECRET", hide_env_values = true)]
    pub shopify_api_secret: Option<String>,
    /// The key secrets are stored encrypted under, and the keys it replaced.
    #[command(flatten)]
    pub encryption: crate::crypto::EncryptionConfig,
    /// The key the payment provider signs its callbacks with.
    #[arg(long, env = "PAYMENTS_WEBHOOK_SECRET", hide_env_values = true)]
    pub payments_webhook_secret: Option<String>,
    /// The largest request body, in bytes (413 past it) [default: 1 MiB].
    #[arg(long, env = "STRATIX_MAX_BODY_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: Option<u64>,
    /// The largest `variables`, in bytes.
    #[arg(long, env = "STRATIX_MAX_VARIABLES_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_variables_bytes: Option<u64>,
    /// The largest GraphQL document, in bytes.
    #[arg(long, env = "STRATIX_MAX_DOCUMENT_BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_document_bytes: Option<u64>,
    /// The most tokens in a GraphQL document.
    #[arg(long, env = "STRATIX_MAX_TOKENS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_tokens: Option<u64>,
    /// The most open operations on one WebSocket.
    #[arg(long, env = "STRATIX_MAX_SUBSCRIPTIONS_PER_CONNECTION", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_subscriptions_per_connection: Option<u64>,
    /// The most open operations of one principal on this instance.
    #[arg(long, env = "STRATIX_MAX_SUBSCRIPTIONS_PER_PRINCIPAL", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_subscriptions_per_principal: Option<u64>,
    /// PostgreSQL's `statement_timeout` for each request, in milliseconds [default: 5000].
    #[arg(long, env = "STRATIX_STATEMENT_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub statement_timeout_ms: Option<u64>,
    /// How long a request may run, in milliseconds [default: 30000].
    #[arg(long, env = "STRATIX_REQUEST_TIMEOUT_MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub request_timeout_ms: Option<u64>,
    /// Origins browsers may call the API from, comma-separated (`*`: any, without
    /// credentials); none: same-origin only.
    #[arg(long, env = "STRATIX_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Whether the schema answers introspection.
    #[arg(long, env = "STRATIX_INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// Whether GraphiQL is served at `/`.
    #[arg(long, env = "STRATIX_GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    /// How many days of storefront `events` a shop keeps when its
    /// `settings.data_retention_days` does not say (1..3650).
    #[arg(long, env = "STRATIX_EVENTS_RETENTION_DAYS", default_value_t = crate::domains::shopify::shops::DEFAULT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub events_retention_days: u32,
    /// Persisted documents loaded at start: Apollo's persisted query manifest, or a JSON
    /// object of SHA-256 hash to document.
    #[arg(long, env = "STRATIX_PERSISTED_QUERIES")]
    pub persisted_queries: Option<std::path::PathBuf>,
    /// Run only the persisted documents (needs STRATIX_PERSISTED_QUERIES).
    #[arg(long, env = "STRATIX_PERSISTED_ONLY", default_value_t = false, action = clap::ArgAction::Set)]
    pub persisted_only: bool,
    /// Whether GraphQL requests (and the webhooks) are throttled: a leaky bucket of cost
    /// points per principal.
    #[arg(long, env = "STRATIX_THROTTLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub throttle: bool,
    /// The points a principal's bucket holds: also the most one operation may cost.
    #[arg(long, env = "STRATIX_THROTTLE_MAXIMUM", default_value = "1000", value_parser = positive)]
    pub throttle_maximum: f64,
    /// The points restored to a bucket per second.
    #[arg(long, env = "STRATIX_THROTTLE_RESTORE_RATE", default_value = "50", value_parser = positive)]
    pub throttle_restore_rate: f64,
    /// Multipliers of a shop's bucket (size and rate) by its plan, `plan=factor,...`.
    #[arg(long, env = "STRATIX_THROTTLE_PLANS", default_value = "advanced=2,plus=10", value_parser = plans)]
    pub throttle_plans: String,
    /// The most buckets held in memory (refilled ones are forgotten first).
    #[arg(long, env = "STRATIX_THROTTLE_MAX_BUCKETS", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub throttle_max_buckets: u64,
    /// Sign-up, sign-in and invitation attempts per client address per window.
    #[arg(long, env = "STRATIX_AUTH_ATTEMPTS_PER_ADDRESS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_attempts_per_address: u32,
    /// Sign-up and sign-in attempts per email (invitations: per user) per window.
    #[arg(long, env = "STRATIX_AUTH_ATTEMPTS_PER_EMAIL", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub auth_attempts_per_email: u32,
    /// The window the attempt limits refill over: 10m, 1h, ...
    #[arg(long, env = "STRATIX_AUTH_ATTEMPTS_WINDOW", default_value = "10m", value_parser = parse_duration)]
    pub auth_attempts_window: Duration,
    /// The header a trusted reverse proxy puts the client's address in (its right-most
    /// entry is read, e.g. X-Forwarded-For); unset: the connection's peer address.
    #[arg(long, env = "STRATIX_CLIENT_ADDRESS_HEADER")]
    pub client_address_header: Option<String>,
    /// Whether webhook endpoints may be plain http:// to a loopback address (local
    /// receivers; always allowed in development mode).
    #[arg(long, env = "STRATIX_WEBHOOKS_ALLOW_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhooks_allow_loopback: bool,
    /// How webhook deliveries are retried.
    #[command(flatten)]
    pub webhooks: crate::domains::distribution::delivery::DeliveryConfig,
    /// Whether background jobs (lease sweep, results refresh, partition upkeep) run in this
    /// instance.
    #[arg(long, env = "STRATIX_JOBS", default_value_t = true, action = clap::ArgAction::Set)]
    pub jobs: bool,
}

/// Secrets are never printed: the database URL without its password, the keys as whether
/// they are set.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |secret: &Option<String>| secret.as_ref().map(|_| "<set>");
        f.debug_struct("Config")
            .field("database", &self.database)
            .field("listen", &self.listen_addr())
            .field("metrics_listen", &self.metrics_listen)
            .field("jwt_secret", &set(&self.jwt_secret))
            .field("jwt_jwks", &self.jwt_jwks)
            .field("shopify_api_key", &self.shopify_api_key)
            .field("shopify_api_secret", &set(&self.shopify_api_secret))
            .field(
                "payments_webhook_secret",
                &set(&self.payments_webhook_secret),
            )
            .field("encryption", &self.encryption)
            .field("options", &self.options())
            .field("webhooks", &self.webhooks)
            .field("jobs", &self.jobs)
            .finish()
    }
}

impl Config {
    /// The configuration from the environment alone (no flags), for embedding and tests.
    pub fn from_env() -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Env {
            #[command(flatten)]
            config: Config,
        }
        let env = <Env as clap::Parser>::try_parse_from(["stratix"])?;
        Ok(env.config)
    }

    /// The configuration from these command-line arguments (the program name first) and
    /// the environment.
    pub fn from_args(args: &[&str]) -> anyhow::Result<Self> {
        #[derive(clap::Parser)]
        struct Args {
            #[command(flatten)]
            config: Config,
        }
        Ok(<Args as clap::Parser>::try_parse_from(args)?.config)
    }

    /// The limits and switches the settings give (development mode aside, which `serve`
    /// decides).
    pub fn options(&self) -> Options {
        let mut options = Options::default();
        let limits = &mut options.limits;
        let sizes = [
            (self.max_body_bytes, &mut limits.max_body_bytes),
            (self.max_variables_bytes, &mut limits.max_variables_bytes),
            (self.max_document_bytes, &mut limits.max_document_bytes),
            (self.max_tokens, &mut limits.max_tokens),
            (
                self.max_subscriptions_per_connection,
                &mut limits.max_subscriptions_per_connection,
            ),
            (
                self.max_subscriptions_per_principal,
                &mut limits.max_subscriptions_per_principal,
            ),
        ];
        for (set, value) in sizes {
            if let Some(set) = set {
                *value = usize::try_from(set).unwrap_or(usize::MAX);
            }
        }
        if let Some(ms) = self.statement_timeout_ms {
            limits.statement_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.request_timeout_ms {
            limits.request_timeout = Duration::from_millis(ms);
        }
        options.cors_origins = self
            .cors_origins
            .split(',')
            .map(str::trim)
            .filter(|origin| !origin.is_empty())
            .map(str::to_owned)
            .collect();
        options.introspection = self.introspection;
        options.graphiql = self.graphiql;
        options.throttle = crate::throttle::ThrottleConfig {
            enabled: self.throttle,
            maximum: self.throttle_maximum,
            restore_rate: self.throttle_restore_rate,
            plans: crate::throttle::parse_plans(&self.throttle_plans).unwrap_or_default(),
            max_buckets: usize::try_from(self.throttle_max_buckets).unwrap_or(usize::MAX),
            attempts_per_address: self.auth_attempts_per_address,
            attempts_per_email: self.auth_attempts_per_email,
            attempts_window: self.auth_attempts_window,
            client_address_header: self.client_address_header.clone(),
            clock: crate::throttle::Clock::System,
        };
        options.webhooks_allow_loopback = self.webhooks_allow_loopback;
        options
    }

    /// The address `serve` binds: `STRATIX_LISTEN`, else `0.0.0.0:$PORT`, else
    /// [`DEFAULT_LISTEN`].
    pub fn listen_addr(&self) -> SocketAddr {
        match (self.listen, self.port) {
            (Some(listen), _) => listen,
            (None, Some(port)) => SocketAddr::from(([0, 0, 0, 0], port)),
            (None, None) => DEFAULT_LISTEN,
        }
    }

    /// Which ways of signing in are configured, for the startup line.
    pub fn auth_methods(&self) -> Vec<&'static str> {
        let mut methods = vec![if self.jwt_secret.is_some() {
            "jwt-hs256"
        } else {
            "jwt-hs256 (development secret)"
        }];
        if self.jwt_jwks.is_some() {
            methods.push("jwt-jwks");
        }
        if self.shopify_api_key.is_some() && self.shopify_api_secret.is_some() {
            methods.push("shopify-session");
        }
        methods.push("api-key");
        methods
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
            Some(location) => Some(crate::auth::jwks::Jwks::load(location).await?),
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
            // `serve` opens the encryption key ring itself: it needs the database URL, and
            // minting a token needs no ring.
            encryption: crate::crypto::KeyRing::default(),
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

/// A positive, finite number.
fn positive(text: &str) -> Result<f64, String> {
    text.parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n > 0.0)
        .ok_or_else(|| format!("{text:?} is not a positive number"))
}

/// `plan=factor,...`, checked (see [`crate::throttle::parse_plans`]).
fn plans(text: &str) -> Result<String, String> {
    crate::throttle::parse_plans(text).map(|_| text.to_owned())
}

/// A duration like `30s`, `500ms`, `2m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not like 500ms, 30s, 2m or 1h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("{text:?} is not like 500ms, 30s, 2m or 1h")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    fn listen(args: &[&str]) -> SocketAddr {
        let args = std::iter::once("stratix").chain(args.iter().copied());
        <Cli as clap::Parser>::parse_from(args).config.listen_addr()
    }

    #[test]
    fn port_is_honoured_when_no_listen_address_is_given() {
        assert_eq!(listen(&["--port", "9000"]), "0.0.0.0:9000".parse().unwrap());
        assert_eq!(
            listen(&["--port", "9000", "--listen", "127.0.0.1:7000"]),
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(listen(&[]), DEFAULT_LISTEN);
    }

    #[test]
    fn durations_read_with_their_unit() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
    }
}
