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

/// The PostgreSQL role requests run as: not the tables' owner, no BYPASSRLS, so the
/// row-level security policies filter every statement (created by the migrations).
pub use migration::APP_ROLE;

/// The database as one request uses it.
///
/// On PostgreSQL, one transaction per request that runs as [`APP_ROLE`] with the
/// principal's claims in `request.jwt.claims` (Supabase's convention), so the policies
/// apply to everything the request does: the second wall behind the API's own scoping.
/// On SQLite (no row-level security), the pool.
#[derive(Clone)]
pub enum RequestDb {
    /// The pool, as is.
    Pool(DatabaseConnection),
    /// The request's transaction.
    Transaction(Arc<sea_orm::DatabaseTransaction>),
}

impl RequestDb {
    /// Starts a request on `pool` with these claims.
    pub async fn begin(
        pool: &DatabaseConnection,
        claims: &serde_json::Value,
    ) -> Result<Self, DbErr> {
        use sea_orm::{ConnectionTrait as _, TransactionTrait as _};
        if pool.get_database_backend() != DbBackend::Postgres {
            return Ok(Self::Pool(pool.clone()));
        }
        let txn = pool.begin().await?;
        // One round trip for both settings; `true` keeps them to this transaction.
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('request.jwt.claims', $1, true), set_config('role', $2, true)",
            [claims.to_string().into(), APP_ROLE.into()],
        ))
        .await?;
        Ok(Self::Transaction(Arc::new(txn)))
    }

    /// Ends the request: commits when `commit` (and nothing else holds the transaction),
    /// rolls back otherwise.
    pub async fn finish(self, commit: bool) -> Result<(), DbErr> {
        match self {
            Self::Pool(_) => Ok(()),
            Self::Transaction(txn) => match Arc::try_unwrap(txn) {
                Ok(txn) if commit => txn.commit().await,
                Ok(txn) => txn.rollback().await,
                // A batch still running after a failed request holds it; it rolls back
                // when the last holder drops it.
                Err(_) if !commit => Ok(()),
                Err(_) => Err(DbErr::Custom(
                    "request transaction still in use at commit".to_owned(),
                )),
            },
        }
    }
}

#[sea_orm::prelude::async_trait::async_trait]
impl sea_orm::ConnectionTrait for RequestDb {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pool(db) => db.get_database_backend(),
            Self::Transaction(txn) => txn.get_database_backend(),
        }
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Self::Pool(db) => db.execute_raw(stmt).await,
            Self::Transaction(txn) => txn.execute_raw(stmt).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        match self {
            Self::Pool(db) => db.execute_unprepared(sql).await,
            Self::Transaction(txn) => txn.execute_unprepared(sql).await,
        }
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_one_raw(stmt).await,
            Self::Transaction(txn) => txn.query_one_raw(stmt).await,
        }
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        match self {
            Self::Pool(db) => db.query_all_raw(stmt).await,
            Self::Transaction(txn) => txn.query_all_raw(stmt).await,
        }
    }
}
