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
    /// `STRATIX_LISTEN`: the address `serve` binds.
    pub listen: SocketAddr,
    /// `JWT_SECRET`: the HS256 secret user tokens are signed with. Unset means development
    /// mode: a random secret for this process, printed with a ready token.
    pub jwt_secret: Option<String>,
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
        let jwt_secret = std::env::var("JWT_SECRET").ok().filter(|s| !s.is_empty());
        Ok(Self {
            database_url,
            listen,
            jwt_secret,
        })
    }
}
