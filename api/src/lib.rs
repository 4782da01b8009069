//! The Stratix service: HTTP router, database access and operations commands.
//!
//! `main.rs` parses the command line and calls into this crate; the tests call the same
//! functions, so they exercise the production router and migrations.

pub mod auth;
pub mod config;
pub mod crypto;
pub mod db;
pub mod domains;
pub mod error;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod lifecycle;
pub mod lru;
pub mod ops;
pub mod persisted;
pub mod realtime;
pub mod request;
pub mod state;
pub mod store;
pub mod storefront;
pub mod tables;
pub mod telemetry;
pub mod throttle;
pub mod webhooks;

use anyhow::Context as _;
use axum::Router;
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbBackend};

pub use config::Config;
pub use state::AppState;

/// Opens the database; an embedded SQLite file is migrated on first start.
///
/// PostgreSQL is migrated explicitly (`stratix migrate up`, as the schema owner), so a
/// service that connects as a less privileged role never needs DDL rights.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = config.database.connect().await?;
    if db.get_database_backend() == DbBackend::Sqlite {
        Migrator::up(&db, None)
            .await
            .context("migrating the SQLite database")?;
    } else {
        let pending = Migrator::get_pending_migrations(&db).await?;
        if !pending.is_empty() {
            anyhow::bail!(
                "the database has {} pending migrations: run `stratix migrate up` first",
                pending.len()
            );
        }
    }
    Ok(db)
}

/// Builds the application state with the default options: schema, keys and limits over
/// `db`.
pub fn build_state(db: DatabaseConnection, keys: auth::Keys) -> anyhow::Result<AppState> {
    build_state_with(db, keys, state::Options::default())
}

/// Builds the application state with these options.
pub fn build_state_with(
    db: DatabaseConnection,
    keys: auth::Keys,
    options: state::Options,
) -> anyhow::Result<AppState> {
    let limits = options.limits;
    let options_throttle = options.throttle.clone();
    let usage_logs = domains::shopify::usage::UsageLogs::with_capacity(options.usage_log_capacity);
    let schema = graphql::schema_with(limits, options.introspection)
        .context("building the GraphQL schema")?;
    // Starts listening now when a runtime is running (else on first use).
    let realtime = realtime::Broker::new(db.clone());
    realtime.start();
    Ok(AppState {
        db,
        schema,
        keys: std::sync::Arc::new(keys),
        limits,
        options: std::sync::Arc::new(options),
        operations: realtime::socket::OpenOperations::default(),
        plans: std::sync::Arc::default(),
        api_scoping: true,
        realtime,
        usage: Default::default(),
        audits: Default::default(),
        usage_logs,
        shutdown: lifecycle::Shutdown::default(),
        development_token: None,
        persisted: std::sync::Arc::default(),
        throttle: throttle::Throttle::new(options_throttle),
    })
}

/// Builds the router the server and the tests use: the API, `/ready` and `/metrics`,
/// with request ids and request metrics on every route.
pub fn router(state: AppState) -> Router {
    app(state, true)
}

fn app(state: AppState, with_metrics: bool) -> Router {
    let mut router = http::router(state.clone());
    if state.options.graphiql {
        router = router.merge(graphiql::routes(state.clone()));
    }
    telemetry::layer(router.merge(ops::endpoints::routes(state, with_metrics)))
}

/// Runs the HTTP server until SIGTERM or SIGINT, then shuts down cleanly (see
/// [`lifecycle`]).
pub async fn serve(config: Config) -> anyhow::Result<()> {
    check_keys(&config)?;
    let (encryption, notice) = config.encryption.key_ring(&config.database.url)?;
    if let Some(notice) = notice {
        tracing::warn!("{notice}");
    }
    let db = open_database(&config).await?;
    let development = !config.has_user_keys();
    let (mut keys, development_token) = if development {
        let (keys, token) = development_keys(&config, &db).await?;
        (keys, Some(token.into()))
    } else {
        (config.keys(None).await?, None)
    };
    keys.encryption = encryption;
    let options = state::Options {
        development,
        webhooks_allow_loopback: config.webhooks_allow_loopback || development,
        ..config.options()
    };
    let mut state = build_state_with(db.clone(), keys, options)?;
    state.development_token = development_token;
    match (&config.persisted_queries, config.persisted_only) {
        (Some(path), only) => {
            state.persisted = std::sync::Arc::new(persisted::Persisted::load(path, only)?);
        }
        (None, true) => {
            anyhow::bail!(
                "STRATIX_PERSISTED_ONLY needs STRATIX_PERSISTED_QUERIES: the documents to allow"
            )
        }
        (None, false) => {}
    }
    let shutdown = state.shutdown.clone();
    // Every instance flushes its own request counts (not a locked job); once more at exit.
    let usage = state.usage.clone();
    let meter = tokio::spawn(domains::accounts::usage::meter_requests(
        usage.clone(),
        db.clone(),
        state.realtime.clone(),
    ));
    let audits = state.audits.clone();
    let audit_writer = tokio::spawn(domains::distribution::audits::write_audits(
        audits.clone(),
        db.clone(),
    ));
    let usage_logs = state.usage_logs.clone();
    let usage_log_writer = tokio::spawn(domains::shopify::usage::write_usage_logs(
        usage_logs.clone(),
        db.clone(),
    ));
    let jobs = config
        .jobs
        .then(|| ops::jobs::start(&state, config.events_retention_days));
    // Safe on every instance at once (claims skip each other's rows), but off with the jobs.
    let deliverer = config.jobs.then(|| {
        domains::distribution::delivery::Deliverer::start(
            db.clone(),
            state.keys.encryption.clone(),
            domains::distribution::delivery::DeliveryConfig {
                allow_loopback: state.options.webhooks_allow_loopback,
                ..config.webhooks.clone()
            },
        )
    });
    let listen = config.listen_addr();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let metrics_server = match config.metrics_listen {
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} for /metrics"))?;
            let routes = telemetry::layer(ops::endpoints::metrics_routes(state.clone()));
            Some(tokio::spawn(
                axum::serve(listener, routes)
                    .with_graceful_shutdown(shutdown.begun())
                    .into_future(),
            ))
        }
        None => None,
    };
    let state_persisted = state.persisted.len();
    let app = app(state, config.metrics_listen.is_none());
    tracing::info!(
        listen = %listen,
        database = db::backend_name(&db),
        auth = config.auth_methods().join(","),
        metrics = %config.metrics_listen.map_or_else(|| format!("{listen}/metrics"), |a| format!("{a}/metrics")),
        jobs = config.jobs,
        traces = telemetry::otel::enabled(),
        "stratix {} listening on http://{listen} ({} at {}; auth: {}; /metrics on {}; traces {}; background jobs {}; persisted queries: {})",
        env!("CARGO_PKG_VERSION"),
        db::backend_name(&db),
        redact(&config.database.url),
        config.auth_methods().join(", "),
        config.metrics_listen.unwrap_or(listen),
        if telemetry::otel::enabled() { "to OTLP" } else { "off" },
        if config.jobs { "on" } else { "off" },
        match (config.persisted_only, state_persisted) {
            (true, n) => format!("only the {n} loaded"),
            (false, 0) => "automatic".to_owned(),
            (false, n) => format!("automatic, {n} loaded"),
        },
    );
    let mut server = tokio::spawn(
        // With the peer's address: anonymous callers are throttled by it.
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.begun())
        .into_future(),
    );
    let signal = tokio::select! {
        ended = &mut server => {
            ended??;
            anyhow::bail!("the server stopped on its own");
        }
        signal = lifecycle::signal() => signal,
    };
    let grace = config.shutdown_timeout;
    tracing::info!(
        signal,
        "{signal}: shutting down; in-flight requests have {}s to finish",
        grace.as_secs()
    );
    // Stop accepting, fail /ready, close WebSockets (1001).
    shutdown.begin();
    match tokio::time::timeout(grace, &mut server).await {
        Ok(ended) => ended??,
        Err(_) => {
            tracing::warn!("requests still running after {}s; exiting", grace.as_secs());
            server.abort();
        }
    }
    if !shutdown
        .sockets_closed(std::time::Duration::from_secs(5))
        .await
    {
        tracing::warn!(
            open = shutdown.websockets(),
            "WebSockets still open at exit"
        );
    }
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    if let Some(jobs) = jobs {
        jobs.stop().await;
    }
    if let Some(deliverer) = deliverer {
        deliverer.stop().await;
    }
    meter.abort();
    if let Err(error) = usage.flush(&db).await {
        tracing::warn!(%error, "writing the last API request counts failed");
    }
    audit_writer.abort();
    domains::queue::flush_at_exit(&audits, &db).await;
    usage_log_writer.abort();
    domains::queue::flush_at_exit(&usage_logs, &db).await;
    db.close().await.ok();
    tracing::info!("stopped");
    Ok(())
}

/// Development mode (tokens signed with a secret made up at start) is for the embedded
/// SQLite database only: a PostgreSQL deployment without keys would accept tokens nobody
/// can verify later, so it does not start.
pub fn check_keys(config: &Config) -> anyhow::Result<()> {
    if !config.has_user_keys() && !config.database.url.starts_with("sqlite") {
        anyhow::bail!(
            "JWT_SECRET (or JWT_JWKS) must be set to serve {}: development mode, with a \
             made-up secret and printed tokens, runs on SQLite only",
            redact(&config.database.url)
        );
    }
    Ok(())
}

/// A database URL with its password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The demo tenant development mode signs in as.
pub const DEMO_EMAIL: &str = "demo@stratix.dev";

/// Development mode (no `JWT_SECRET`): a random secret for this process, a demo user (made
/// once, with its profile and credits), and ready tokens for it and for `service_role`;
/// the keys, and the demo user's token for GraphiQL.
async fn development_keys(
    config: &Config,
    db: &DatabaseConnection,
) -> anyhow::Result<(auth::Keys, String)> {
    use entity::accounts::users;
    use sea_orm::{
        ActiveModelTrait as _, ColumnTrait as _, EntityTrait as _, QueryFilter as _, Set,
    };
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let demo = match users::Entity::find()
        .filter(users::Column::Email.eq(DEMO_EMAIL))
        .one(db)
        .await?
    {
        Some(user) => user.id,
        None => {
            let now = chrono::Utc::now();
            users::ActiveModel {
                id: Set(uuid::Uuid::new_v4()),
                email: Set(DEMO_EMAIL.to_owned()),
                name: Set(Some("Demo".to_owned())),
                password_hash: Set(None),
                role: Set("user".to_owned()),
                last_login: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await?
            .id
        }
    };
    let token = |sub: String, role: &str| {
        let now = chrono::Utc::now();
        auth::jwt::mint(
            secret.as_bytes(),
            &auth::jwt::Claims {
                sub,
                role: role.to_owned(),
                aud: auth::jwt::AUDIENCE.to_owned(),
                exp: (now + chrono::Duration::days(1)).timestamp(),
                iat: Some(now.timestamp()),
                nbf: None,
            },
        )
    };
    let demo_token = token(demo.to_string(), "authenticated")?;
    eprintln!(
        "development mode (no JWT_SECRET): GraphiQL at http://{}/ (signed in as the demo user)\n  \
         demo user {DEMO_EMAIL}: Authorization: Bearer {demo_token}\n  \
         service_role:             Authorization: Bearer {}",
        config.listen_addr(),
        token("development".to_owned(), "service_role")?,
    );
    Ok((config.keys(Some(&secret)).await?, demo_token))
}
