//! `stratix`: the command line. Parses arguments, loads configuration, and calls into `api`.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use migration::{Migrator, MigratorTrait};

/// The service allocates many small, short-lived values per request (rows, GraphQL values);
/// mimalloc serves them markedly faster than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "stratix",
    version,
    about = "GraphQL backend-for-frontend over SQLite or PostgreSQL"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default command).
    Serve,
    /// Apply or revert migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Validate the schema: tables, columns, indexes, triggers and row-level security.
    Check,
    /// Print the GraphQL schema (SDL); `schema.graphql` is its output.
    Schema,
    /// Mint a development token signed with `JWT_SECRET`.
    Token {
        /// The subject: a user id (or a label, for `service_role`).
        #[arg(long)]
        sub: String,
        /// The role claim.
        #[arg(long, default_value = "authenticated")]
        role: String,
        /// Mint a Shopify session token for this shop (`x.myshopify.com`) instead, signed
        /// with `SHOPIFY_API_SECRET` for `SHOPIFY_API_KEY`.
        #[arg(long)]
        shop: Option<String>,
        /// How long the token lives: `30s`, `15m`, `1h`, `7d`.
        #[arg(long, default_value = "1h", value_parser = parse_ttl)]
        ttl: chrono::Duration,
    },
}

fn parse_ttl(text: &str) -> Result<chrono::Duration, String> {
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not like 30s, 15m, 1h or 7d"))?;
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(format!("{text:?} is not like 30s, 15m, 1h or 7d")),
    }
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(short = 'n', long)]
        steps: Option<u32>,
    },
    /// Revert applied migrations (all, or the last N).
    Down {
        #[arg(short = 'n', long)]
        steps: Option<u32>,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table, then apply all migrations.
    Fresh,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,sea_orm_migration=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = api::Config::from_env()?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => api::serve(config).await?,
        Command::Migrate { action } => migrate(&config, action).await?,
        Command::Schema => print!(
            "{}",
            api::graphql::schema(api::graphql::Limits::default())?.sdl()
        ),
        Command::Token {
            sub,
            role,
            shop,
            ttl,
        } => {
            let now = chrono::Utc::now();
            if let Some(shop) = shop {
                let keys = config.keys(None).await?;
                println!(
                    "{}",
                    api::auth::shopify::mint(&keys.shopify, &shop, &sub, now + ttl)?
                );
                return Ok(ExitCode::SUCCESS);
            }
            let secret = config
                .jwt_secret
                .context("JWT_SECRET must be set to mint a token")?;
            let claims = api::auth::jwt::Claims {
                sub,
                role,
                aud: api::auth::jwt::AUDIENCE.to_owned(),
                exp: (now + ttl).timestamp(),
                iat: Some(now.timestamp()),
                nbf: None,
            };
            println!("{}", api::auth::jwt::mint(secret.as_bytes(), &claims)?);
        }
        Command::Check => {
            let db = api::db::connect(&config.database_url)
                .await
                .context("cannot open the database")?;
            let report = api::ops::check::run(&db).await?;
            print!("{report}");
            if !report.passed() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn migrate(config: &api::Config, action: MigrateAction) -> anyhow::Result<()> {
    let db = api::db::connect_for_migrations(&config.database_url)
        .await
        .with_context(|| format!("cannot open {}", api::redact(&config.database_url)))?;
    match action {
        MigrateAction::Up { steps } => Migrator::up(&db, steps).await?,
        MigrateAction::Down { steps } => Migrator::down(&db, steps).await?,
        MigrateAction::Fresh => Migrator::fresh(&db).await?,
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:?}\t{}", migration.status(), migration.name());
            }
        }
    }
    Ok(())
}
