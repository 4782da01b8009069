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
    /// How logs are written: `text`, or `json` (one object per line).
    #[arg(
        long,
        global = true,
        env = "STRATIX_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: api::telemetry::LogFormat,
    /// What is logged, in `tracing` env-filter syntax.
    #[arg(long = "log", global = true, env = "RUST_LOG", default_value = api::telemetry::DEFAULT_LOG_FILTER)]
    log_filter: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default command).
    Serve(Box<api::Config>),
    /// Apply or revert migrations.
    Migrate {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Validate the schema (tables, columns, indexes, triggers, row-level security,
    /// partitions) and the data (orphans, credit balances, version sequences).
    Check {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
    },
    /// Back the database up into DIR: a consistent snapshot named by its UTC time, with a
    /// manifest (version, migrations, row counts, SHA-256); backups older than 7 days are
    /// pruned, the newest always kept.
    Backup {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
        /// Where backups are kept.
        #[arg(long, env = "STRATIX_BACKUP_DIR", default_value = "backups")]
        dir: std::path::PathBuf,
    },
    /// Restore a backup (its data file or manifest) into the database, replacing what is
    /// there; checks the manifest and checksum first, ends with `stratix check`.
    Restore {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
        /// The backup: `stratix-....sqlite`, `.dump`, or its `.manifest.json`.
        file: std::path::PathBuf,
        /// Yes, replace the database's contents with the backup's.
        #[arg(long)]
        yes: bool,
    },
    /// Make this month's and next month's `events` partitions (PostgreSQL) and apply each
    /// shop's retention; `stratix serve` does the same daily.
    Partitions {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
        /// How many days of `events` a shop keeps when its `data_retention_days` does not say.
        #[arg(long, env = "STRATIX_EVENTS_RETENTION_DAYS", default_value_t = api::domains::shopify::shops::DEFAULT_RETENTION_DAYS, value_parser = clap::value_parser!(u32).range(1..=3650))]
        retention_days: u32,
    },
    /// Manage the keys secrets are encrypted under.
    Keys {
        #[command(flatten)]
        database: api::config::DatabaseConfig,
        #[command(flatten)]
        encryption: api::crypto::EncryptionConfig,
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Print the GraphQL schema (SDL); `schema.graphql` is its output.
    Schema,
    /// Mint a development token signed with `JWT_SECRET`.
    Token {
        #[command(flatten)]
        config: Box<api::Config>,
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
enum KeysAction {
    /// Re-encrypt every secret column under STRATIX_ENCRYPTION_KEY, opening what earlier
    /// keys encrypted with STRATIX_ENCRYPTION_KEYS_OLD; values already under the current
    /// key are left alone, so it can be run again after an interruption.
    Rotate,
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply pending migrations (all, or the next N).
    Up {
        #[arg(short = 'n', long)]
        steps: Option<u32>,
    },
    /// Revert the last applied migration (or the last N).
    Down {
        #[arg(short = 'n', long, default_value_t = 1)]
        steps: u32,
    },
    /// List migrations and whether each is applied.
    Status,
    /// Drop every table, then apply all migrations (asks for --yes: it deletes all data).
    Fresh {
        /// Yes, delete every table and all data.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let tracing = api::telemetry::init_logging(cli.log_format, &cli.log_filter);
    // `stratix` alone serves, configured from the environment.
    let command = match cli.command.map_or_else(
        || api::Config::from_env().map(|config| Command::Serve(Box::new(config))),
        Ok,
    ) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    let code = match run(command).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    };
    tracing.shutdown().await;
    code
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(config) => api::serve(*config).await?,
        Command::Migrate { database, action } => migrate(&database, action).await?,
        Command::Schema => print!(
            "{}",
            api::graphql::schema(api::graphql::Limits::default())?.sdl()
        ),
        Command::Token {
            config,
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
        Command::Check { database } => {
            let db = database.connect().await?;
            let report = api::ops::check::run(&db).await?;
            print!("{report}");
            if !report.passed() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Backup { database, dir } => {
            let db = database.connect().await?;
            eprintln!(
                "backing up {} into {}",
                api::redact(&database.url),
                dir.display()
            );
            let made = api::ops::backup::backup(&db, &database.url, &dir).await?;
            let rows: i64 = made.manifest.row_counts.values().sum();
            println!(
                "{} ({} bytes, {rows} rows in {} tables, sha256 {})",
                made.file.display(),
                made.manifest.bytes,
                made.manifest.row_counts.len(),
                made.manifest.sha256
            );
            for old in made.pruned {
                eprintln!("pruned {}", old.display());
            }
        }
        Command::Restore {
            database,
            file,
            yes,
        } => {
            let (_, manifest) = api::ops::backup::verify(&file)?;
            eprintln!(
                "{} verified: {} backup of {}, {} migrations, checksum ok",
                file.display(),
                manifest.backend,
                manifest.created_at,
                manifest.migrations.len()
            );
            anyhow::ensure!(
                yes,
                "restoring replaces everything in {}: add --yes to go ahead",
                api::redact(&database.url)
            );
            eprintln!("restoring into {}", api::redact(&database.url));
            let restored = api::ops::backup::restore(&file, &database.url).await?;
            eprintln!("restored; row counts match the manifest; checking");
            print!("{}", restored.check);
            if !restored.check.passed() {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Keys {
            database,
            encryption,
            action: KeysAction::Rotate,
        } => {
            let (ring, notice) = encryption.key_ring(&database.url)?;
            if let Some(notice) = notice {
                eprintln!("{notice}");
            }
            let db = database.connect().await?;
            let current = ring.current_id().unwrap_or_default().to_owned();
            eprintln!("re-encrypting every secret under key {current}");
            let totals = api::crypto::rotate::rotate(&db, &ring, |progress| {
                eprintln!("  {progress}");
            })
            .await?;
            let rotated: u64 = totals.iter().map(|t| t.rotated).sum();
            let seen: u64 = totals.iter().map(|t| t.seen).sum();
            println!(
                "{seen} secrets in {} columns, {rotated} re-encrypted under key {current}",
                totals.len()
            );
        }
        Command::Partitions {
            database,
            retention_days,
        } => {
            let db = database.connect().await?;
            // No subscriber listens to this process; PostgreSQL's triggers tell the servers.
            let (upkeep, _writes) = api::ops::partitions::upkeep(&db, retention_days).await?;
            println!("events: {upkeep}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn migrate(
    database: &api::config::DatabaseConfig,
    action: MigrateAction,
) -> anyhow::Result<()> {
    let db = database.connect_for_migrations().await?;
    match action {
        MigrateAction::Up { steps } => {
            let pending = Migrator::get_pending_migrations(&db).await?;
            let steps = steps.map_or(pending.len(), |n| (n as usize).min(pending.len()));
            eprintln!("applying {steps} of {} pending migrations", pending.len());
            // One at a time, so progress shows and a failure names its migration.
            for migration in pending.iter().take(steps) {
                eprintln!("  {}", migration.name());
                Migrator::up(&db, Some(1))
                    .await
                    .with_context(|| format!("applying {}", migration.name()))?;
            }
        }
        MigrateAction::Down { steps } => {
            let applied = Migrator::get_applied_migrations(&db).await?;
            eprintln!(
                "reverting the last {steps} of {} applied migrations",
                applied.len()
            );
            for migration in applied.iter().rev().take(steps as usize) {
                eprintln!("  {}", migration.name());
                Migrator::down(&db, Some(1))
                    .await
                    .with_context(|| format!("reverting {}", migration.name()))?;
            }
        }
        MigrateAction::Fresh { yes } => {
            anyhow::ensure!(
                yes,
                "`migrate fresh` drops every table and all data: add --yes to go ahead"
            );
            eprintln!("dropping every table, then applying all migrations");
            Migrator::fresh(&db).await?;
        }
        MigrateAction::Status => {
            for migration in Migrator::get_migration_with_status(&db).await? {
                println!("{:?}\t{}", migration.status(), migration.name());
            }
        }
    }
    eprintln!("done");
    Ok(())
}
