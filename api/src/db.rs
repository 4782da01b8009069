//! Opening the database: one pool for either backend, and per-request statement counts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, sqlx};
use sea_query_sqlx::SqlxValues;
use tracing::Instrument as _;

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
    connect_with(url, None).await
}

/// [`connect`] with at most `pool_size` connections. The default on PostgreSQL is twice
/// the cores (PostgreSQL's own rule of thumb for a server on the same machine): more
/// connections than that only make the backends take turns on the cores, which lengthens
/// every request; requests past it wait their turn in the pool instead.
pub async fn connect_with(url: &str, pool_size: Option<u32>) -> Result<DatabaseConnection, DbErr> {
    let default = if url.starts_with("sqlite") {
        8
    } else {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        u32::try_from(cores * 2).unwrap_or(u32::MAX).max(4)
    };
    open(url, pool_size.unwrap_or(default)).await
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
    db.set_metric_callback(|_| count_statement());
    Ok(db)
}

/// Counts one statement against the current request, if any.
fn count_statement() {
    let _ = STATEMENTS.try_with(|n| n.fetch_add(1, Ordering::Relaxed));
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
/// On SQLite (no row-level security), a request that writes holds one `BEGIN IMMEDIATE`
/// transaction (the write lock from the start, so two writers never deadlock on an
/// upgrade), and a read-only request reads the pool.
///
/// The transaction opens with the request's first statement, not before: work that comes
/// first (hashing a password, a plan's lookups) holds no connection, and a request that
/// never touches its transaction (one that only uses the pool with the service's rights)
/// never takes a second connection.
#[derive(Clone)]
pub enum RequestDb {
    /// The pool, as is.
    Pool(DatabaseConnection),
    /// The request's transaction.
    Transaction(Arc<TxRequest>),
}

/// A request's transaction, held on an sqlx connection rather than a sea-orm transaction
/// so that it costs as few round trips as possible: on PostgreSQL `BEGIN` and the claims
/// go in one, and a read ends with a rollback that the pool sends along with the check it
/// makes anyway when the connection comes back, instead of a `COMMIT` of its own.
pub struct TxRequest {
    backend: DbBackend,
    pool: DatabaseConnection,
    /// What opens the transaction: on PostgreSQL `BEGIN` with the settings, on SQLite
    /// `BEGIN IMMEDIATE`.
    begin: String,
    /// The claims the request runs under, restored after [`RequestDb::as_service`].
    claims: String,
    /// The transaction, once the first statement opened it.
    transaction: tokio::sync::Mutex<Option<Tx>>,
}

enum Tx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// What a request is going to do, which decides how its transaction starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only reads.
    Read,
    /// Writes (a mutation).
    Write,
}

/// How a request's work ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Keep what it wrote.
    Commit,
    /// Undo what it wrote, if anything (a failed request, or a read).
    Discard,
}

impl End {
    /// `Commit` when the work succeeded, else `Discard`.
    pub fn commit_if(ok: bool) -> Self {
        if ok { Self::Commit } else { Self::Discard }
    }
}

impl RequestDb {
    /// Starts a request on `pool` with these claims.
    pub async fn begin(
        pool: &DatabaseConnection,
        claims: &serde_json::Value,
        access: Access,
    ) -> Result<Self, DbErr> {
        Self::begin_limited(pool, claims, access, None).await
    }

    /// [`RequestDb::begin`], with every statement of the request limited to
    /// `statement_timeout` on PostgreSQL (`SET LOCAL statement_timeout`: a statement
    /// running longer is cancelled, SQLSTATE 57014).
    pub async fn begin_limited(
        pool: &DatabaseConnection,
        claims: &serde_json::Value,
        access: Access,
        statement_timeout: Option<Duration>,
    ) -> Result<Self, DbErr> {
        let begin = match pool.get_database_backend() {
            DbBackend::Postgres => {
                // The simple-query protocol takes no parameters: the claims go in as a
                // literal. `true` keeps the settings to this transaction.
                let timeout = statement_timeout
                    .map(|t| {
                        format!(
                            ", set_config('statement_timeout', '{}', true)",
                            t.as_millis().max(1)
                        )
                    })
                    .unwrap_or_default();
                format!(
                    "BEGIN; SELECT set_config('request.jwt.claims', {}, true), set_config('role', {}, true){timeout}",
                    quote_literal(&claims.to_string()),
                    quote_literal(APP_ROLE),
                )
            }
            _ if access == Access::Read => return Ok(Self::Pool(pool.clone())),
            _ => "BEGIN IMMEDIATE".to_owned(),
        };
        Ok(Self::Transaction(Arc::new(TxRequest {
            backend: pool.get_database_backend(),
            pool: pool.clone(),
            begin,
            claims: claims.to_string(),
            transaction: tokio::sync::Mutex::new(None),
        })))
    }

    /// Ends the request (see [`End`]); a transaction still held elsewhere (a batch running
    /// on after a failed request) rolls back when its last holder drops it.
    pub async fn finish(self, end: End) -> Result<(), DbErr> {
        let Self::Transaction(request) = self else {
            return Ok(());
        };
        match (Arc::try_unwrap(request), end) {
            (Ok(request), End::Commit) => match request.transaction.into_inner() {
                Some(Tx::Postgres(transaction)) => transaction.commit().await.map_err(query_error),
                Some(Tx::Sqlite(transaction)) => transaction.commit().await.map_err(query_error),
                // No statement ran: nothing to commit.
                None => Ok(()),
            },
            // Dropping it queues the rollback on the connection.
            (_, End::Discard) => Ok(()),
            (Err(_), End::Commit) => Err(DbErr::Custom(
                "request transaction still in use at commit".to_owned(),
            )),
        }
    }
}

impl RequestDb {
    /// Runs `work` in this request's transaction with `service_role`'s claims, then puts
    /// the request's own back: for the few steps a workflow takes on the service's account
    /// after checking the caller itself (a new distributor's first owner, an accepted
    /// invitation's membership), which the row-level security policies cannot tell from a
    /// user joining someone else's distributor. Atomic with the rest of the request;
    /// SQLite has no claims and runs `work` as is.
    pub async fn as_service<T, E: From<DbErr>>(
        &self,
        work: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let Self::Transaction(request) = self else {
            return work.await;
        };
        if request.backend != DbBackend::Postgres {
            return work.await;
        }
        let set = |claims: &str| {
            format!(
                "SELECT set_config('request.jwt.claims', {}, true)",
                quote_literal(claims)
            )
        };
        request
            .execute_unprepared(&set(r#"{"role":"service_role"}"#))
            .await?;
        let result = work.await?;
        // After a failure the request rolls back (on PostgreSQL the transaction is already
        // aborted), so only success needs the caller's claims back.
        request.execute_unprepared(&set(&request.claims)).await?;
        Ok(result)
    }
}

/// `value` as a PostgreSQL string literal, whatever `standard_conforming_strings` says.
fn quote_literal(value: &str) -> String {
    format!("E'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

fn query_error(error: sqlx::Error) -> DbErr {
    DbErr::Query(sea_orm::RuntimeErr::SqlxError(Arc::new(error)))
}

fn exec_error(error: sqlx::Error) -> DbErr {
    DbErr::Exec(sea_orm::RuntimeErr::SqlxError(Arc::new(error)))
}

/// `stmt` with its values, bound for sqlx on backend `$db`.
macro_rules! bind {
    ($db:ty, $stmt:expr) => {{
        count_statement();
        let values = $stmt
            .values
            .clone()
            .unwrap_or(sea_orm::sea_query::Values(Vec::new()));
        sqlx::query_with::<$db, _>(sqlx::AssertSqlSafe($stmt.sql.as_str()), SqlxValues(values))
    }};
}

/// A request taking a connection when every one of the pool is in use: it waits, and the
/// wait is counted (`stratix_db_pool_waits_total`, `stratix_db_pool_wait_seconds`).
struct PoolWait(Option<std::time::Instant>);

impl PoolWait {
    fn start<DB: sqlx::Database>(
        idle: usize,
        size: u32,
        options: &sqlx::pool::PoolOptions<DB>,
    ) -> Self {
        let exhausted = idle == 0 && size >= options.get_max_connections();
        Self(exhausted.then(std::time::Instant::now))
    }

    fn end(self) {
        if let Some(started) = self.0 {
            crate::telemetry::metrics::pool_waited(started.elapsed());
        }
    }
}

impl TxRequest {
    /// The transaction, opened now if this is the request's first statement.
    async fn open(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Tx>, DbErr> {
        let mut guard = self.transaction.lock().await;
        if guard.is_none() {
            let begin = sqlx::AssertSqlSafe(self.begin.clone());
            let tx = match self.backend {
                DbBackend::Postgres => {
                    let pool = self.pool.get_postgres_connection_pool();
                    let wait = PoolWait::start(pool.num_idle(), pool.size(), pool.options());
                    let tx = pool.begin_with(begin).await.map_err(query_error)?;
                    wait.end();
                    Tx::Postgres(tx)
                }
                _ => {
                    let pool = self.pool.get_sqlite_connection_pool();
                    let wait = PoolWait::start(pool.num_idle(), pool.size(), pool.options());
                    let tx = pool.begin_with(begin).await.map_err(query_error)?;
                    wait.end();
                    Tx::Sqlite(tx)
                }
            };
            *guard = Some(tx);
        }
        tokio::sync::MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| DbErr::Custom("the request's transaction did not open".to_owned()))
    }

    async fn execute(&self, stmt: &sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        let mut tx = self.open().await?;
        let result = match &mut *tx {
            Tx::Postgres(t) => bind!(sqlx::Postgres, stmt)
                .execute(&mut **t)
                .await
                .map(Into::into),
            Tx::Sqlite(t) => bind!(sqlx::Sqlite, stmt)
                .execute(&mut **t)
                .await
                .map(Into::into),
        };
        result.map_err(exec_error)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        count_statement();
        let mut tx = self.open().await?;
        let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()));
        let result = match &mut *tx {
            Tx::Postgres(t) => sql.execute(&mut **t).await.map(Into::into),
            Tx::Sqlite(t) => sql.execute(&mut **t).await.map(Into::into),
        };
        result.map_err(exec_error)
    }

    async fn query_one(
        &self,
        stmt: &sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        let mut tx = self.open().await?;
        let row = match &mut *tx {
            Tx::Postgres(t) => bind!(sqlx::Postgres, stmt)
                .fetch_optional(&mut **t)
                .await
                .map(|row| row.map(Into::into)),
            Tx::Sqlite(t) => bind!(sqlx::Sqlite, stmt)
                .fetch_optional(&mut **t)
                .await
                .map(|row| row.map(Into::into)),
        };
        row.map_err(query_error)
    }

    async fn query_all(
        &self,
        stmt: &sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        let mut tx = self.open().await?;
        let rows = match &mut *tx {
            Tx::Postgres(t) => bind!(sqlx::Postgres, stmt)
                .fetch_all(&mut **t)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
            Tx::Sqlite(t) => bind!(sqlx::Sqlite, stmt)
                .fetch_all(&mut **t)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
        };
        rows.map_err(query_error)
    }
}

/// A span for one statement of the request (a child of the request's span), when traces
/// are exported; otherwise none, so statements cost nothing more.
fn statement_span(backend: DbBackend, sql: &str) -> tracing::Span {
    if !crate::telemetry::otel::enabled() {
        return tracing::Span::none();
    }
    let system = match backend {
        DbBackend::Postgres => "postgresql",
        _ => "sqlite",
    };
    let operation = sql
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    tracing::info_span!(
        "sql",
        otel.name = %operation,
        otel.kind = "client",
        db.system = system,
        db.statement = sql,
    )
}

#[sea_orm::prelude::async_trait::async_trait]
impl sea_orm::ConnectionTrait for RequestDb {
    fn get_database_backend(&self) -> DbBackend {
        match self {
            Self::Pool(db) => db.get_database_backend(),
            Self::Transaction(request) => request.backend,
        }
    }

    async fn execute_raw(&self, stmt: sea_orm::Statement) -> Result<sea_orm::ExecResult, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        match self {
            Self::Pool(db) => db.execute_raw(stmt).instrument(span).await,
            Self::Transaction(request) => request.execute(&stmt).instrument(span).await,
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<sea_orm::ExecResult, DbErr> {
        let span = statement_span(self.get_database_backend(), sql);
        match self {
            Self::Pool(db) => db.execute_unprepared(sql).instrument(span).await,
            Self::Transaction(request) => request.execute_unprepared(sql).instrument(span).await,
        }
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Option<sea_orm::QueryResult>, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        match self {
            Self::Pool(db) => db.query_one_raw(stmt).instrument(span).await,
            Self::Transaction(request) => request.query_one(&stmt).instrument(span).await,
        }
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        let span = statement_span(self.get_database_backend(), &stmt.sql);
        match self {
            Self::Pool(db) => db.query_all_raw(stmt).instrument(span).await,
            Self::Transaction(request) => request.query_all(&stmt).instrument(span).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::quote_literal;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote_literal("plain"), "E'plain'");
        assert_eq!(
            quote_literal(r#"{"sub":"o'neil\\"}"#),
            r#"E'{"sub":"o''neil\\\\"}'"#
        );
    }
}
