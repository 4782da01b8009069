//! The Stratix service: HTTP router, database access and operations commands.
//!
//! `main.rs` parses the command line and calls into this crate; the tests call the same
//! functions, so they exercise the production router and migrations.

pub mod auth;
pub mod config;
pub mod db;
pub mod domains;
pub mod error;
pub mod graphql;
pub mod http;
pub mod idempotency;
pub mod ops;
pub mod realtime;
pub mod request;
pub mod state;
pub mod store;
pub mod tables;
pub mod webhooks;

use anyhow::Context as _;
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbBackend};

pub use config::Config;
pub use http::router;
pub use state::AppState;

/// Opens the database; an embedded SQLite file is migrated on first start.
///
/// PostgreSQL is migrated explicitly (`stratix migrate up`, as the schema owner), so a
/// service that connects as a less privileged role never needs DDL rights.
pub async fn open_database(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let db = db::connect_with(&config.database_url, config.database_pool_size)
        .await
        .with_context(|| {
            format!(
                "cannot open the database at {}",
                redact(&config.database_url)
            )
        })?;
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
    })
}

/// Runs the HTTP server until Ctrl-C.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    check_keys(&config)?;
    let db = open_database(&config).await?;
    let development = !config.has_user_keys();
    let keys = if development {
        development_keys(&config, &db).await?
    } else {
        config.keys(None).await?
    };
    let options = state::Options {
        development,
        ..config.options.clone()
    };
    let state = build_state_with(db.clone(), keys, options)?;
    tokio::spawn(domains::accounts::usage::meter_requests(
        state.usage.clone(),
        db.clone(),
        state.realtime.clone(),
    ));
    tokio::spawn(domains::experiments::refresh_results(
        db.clone(),
        state.realtime.clone(),
        domains::experiments::REFRESH_EVERY,
    ));
    tokio::spawn(domains::studio::sweep_leases(
        db.clone(),
        state.realtime.clone(),
        domains::studio::SWEEP_EVERY,
    ));
    let app = router(state);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(
        listen = %config.listen,
        database = db::backend_name(&db),
        "stratix listening on http://{}",
        config.listen
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Development mode (tokens signed with a secret made up at start) is for the embedded
/// SQLite database only: a PostgreSQL deployment without keys would accept tokens nobody
/// can verify later, so it does not start.
pub fn check_keys(config: &Config) -> anyhow::Result<()> {
    if !config.has_user_keys() && !config.database_url.starts_with("sqlite") {
        anyhow::bail!(
            "JWT_SECRET (or JWT_JWKS) must be set to serve {}: development mode, with a \
             made-up secret and printed tokens, runs on SQLite only",
            redact(&config.database_url)
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
/// once, with its profile and credits), and ready tokens for it and for `service_role`.
async fn development_keys(config: &Config, db: &DatabaseConnection) -> anyhow::Result<auth::Keys> {
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
    eprintln!(
        "development mode (no JWT_SECRET): GraphiQL at http://{}/ with a header\n  \
         demo user {DEMO_EMAIL}: Authorization: Bearer {}\n  \
         service_role:             Authorization: Bearer {}",
        config.listen,
        token(demo.to_string(), "authenticated")?,
        token("development".to_owned(), "service_role")?,
    );
    config.keys(Some(&secret)).await
}
