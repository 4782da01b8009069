//! Opening the database: one pool for either backend, and per-request statement counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr};

tokio::task_local! {
    /// The statement counter of the request the current task works for.
    static STATEMENTS: Arc<AtomicUsize>;
}

/// Opens a pool on `url` (`sqlite://...` or `postgres://...`).
///
/// SQLite runs in WAL mode with a busy timeout, so readers never block the writer and
/// concurrent writers wait instead of failing; foreign keys are enforced on every connection.
/// Every statement is counted against the request that runs it (see [`count_statements`]).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    open(url, if url.starts_with("sqlite") { 8 } else { 32 }).await
}

/// Opens a single connection, for migrations: sea-orm switches SQLite's foreign keys off
/// around schema changes, which only holds if every statement uses that one connection.
pub async fn connect_for_migrations(url: &str) -> Result<DatabaseConnection, DbErr> {
    open(url, 1).await
}

async fn open(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        });
    let mut db = Database::connect(options).await?;
    db.set_metric_callback(|_| {
        let _ = STATEMENTS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
    });
    Ok(db)
}

/// Runs `future`, counting the SQL statements it (and the tasks it hands work to through
/// [`with_statement_counter`]) executes into `counter`.
pub async fn count_statements<F: Future>(counter: Arc<AtomicUsize>, future: F) -> F::Output {
    STATEMENTS.scope(counter, future).await
}

/// Carries the current request's statement counter into `future`, for spawning.
pub fn with_statement_counter<F>(future: F) -> impl Future<Output = F::Output> + Send
where
    F: Future + Send,
{
    let counter = STATEMENTS.try_with(Arc::clone).ok();
    async move {
        match counter {
            Some(counter) => STATEMENTS.scope(counter, future).await,
            None => future.await,
        }
    }
}

/// A short name for the backend, for logs and `/health`.
pub fn backend_name(db: &DatabaseConnection) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Postgres => "postgres",
        DbBackend::Sqlite => "sqlite",
        _ => "other",
    }
}
