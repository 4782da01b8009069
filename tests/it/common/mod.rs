//! Test support: a fresh database per test on each backend, migrated by the production
//! migrations.

pub mod app;
pub mod fixtures;
pub mod postgres;
pub mod process;
pub mod server;
pub mod world;

use std::sync::Once;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, ExecResult, QueryResult, Statement};

/// The options tests run with: the defaults, with cost buckets and sign-in limits too large
/// for any test to reach, so the throttle meters every request without refusing one (the
/// throttle's own tests size theirs).
pub fn options() -> api::state::Options {
    let mut options = api::state::Options::default();
    options.throttle.maximum = 1e9;
    options.throttle.restore_rate = 1e9;
    options.throttle.attempts_per_address = 1_000_000;
    options.throttle.attempts_per_email = 1_000_000;
    options
}

/// The environment of [`options`] for a `stratix serve` process.
pub const UNREACHED_LIMITS: [(&str, &str); 4] = [
    ("STRATIX_THROTTLE_MAXIMUM", "1000000000"),
    ("STRATIX_THROTTLE_RESTORE_RATE", "1000000000"),
    ("STRATIX_AUTH_ATTEMPTS_PER_ADDRESS", "1000000"),
    ("STRATIX_AUTH_ATTEMPTS_PER_EMAIL", "1000000"),
];

/// One test's own database, removed when dropped.
pub struct TestDb {
    /// A pool on the database.
    pub db: DatabaseConnection,
    /// Its URL: for a second pool (another instance of the service) or a server process.
    pub url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    /// Another handle on a database whose owner cleans it up.
    Nothing,
    SqliteFile(std::path::PathBuf),
    PostgresDatabase {
        admin_url: String,
        name: String,
    },
}

impl TestDb {
    /// A fresh, empty SQLite database file.
    pub async fn sqlite() -> Self {
        let path = std::env::temp_dir().join(format!("stratix-test-{}.db", uuid::Uuid::new_v4()));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = api::db::connect(&url).await.unwrap();
        Self {
            db,
            url,
            cleanup: Cleanup::SqliteFile(path),
        }
    }

    /// A fresh, empty PostgreSQL database, or `None` (said once) when no server is available.
    /// With `REQUIRE_POSTGRES=1`, a missing server fails the test instead.
    pub async fn postgres() -> Option<Self> {
        let server = match postgres::server() {
            Ok(server) => server,
            Err(reason) => {
                if std::env::var("REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("REQUIRE_POSTGRES=1 but PostgreSQL is not available: {reason}");
                }
                static SAID: Once = Once::new();
                SAID.call_once(|| {
                    eprintln!(
                        "PostgreSQL tests skipped: {reason} (set REQUIRE_POSTGRES=1 to fail instead)"
                    )
                });
                return None;
            }
        };
        let name = format!("stratix_test_{}", uuid::Uuid::new_v4().simple());
        let admin = api::db::connect(&server.admin_url).await.unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let url = server.url_for(&name);
        let db = api::db::connect(&url).await.unwrap();
        Some(Self {
            db,
            url,
            cleanup: Cleanup::PostgresDatabase {
                admin_url: server.admin_url.clone(),
                name,
            },
        })
    }

    /// Another pool on a test database that `url` names; the original removes it.
    pub fn attached(db: DatabaseConnection, url: String) -> Self {
        Self {
            db,
            url,
            cleanup: Cleanup::Nothing,
        }
    }

    /// The database, migrated to the latest version.
    pub async fn migrated(self) -> Self {
        Migrator::up(&self.db, None).await.unwrap();
        self
    }

    /// Whether this is the PostgreSQL backend.
    pub fn is_postgres(&self) -> bool {
        self.db.get_database_backend() == DbBackend::Postgres
    }

    /// Runs one SQL statement written with `$1`-style placeholders on either backend.
    pub async fn execute(
        &self,
        sql: &str,
        values: Vec<sea_orm::Value>,
    ) -> Result<ExecResult, sea_orm::DbErr> {
        let backend = self.db.get_database_backend();
        self.db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                placeholders(sql, backend),
                values,
            ))
            .await
    }

    /// Runs one query written with `$1`-style placeholders on either backend.
    pub async fn query(&self, sql: &str, values: Vec<sea_orm::Value>) -> Vec<QueryResult> {
        let backend = self.db.get_database_backend();
        self.db
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                placeholders(sql, backend),
                values,
            ))
            .await
            .unwrap()
    }
}

/// SQLite reads `$1` as a named parameter; numbered `?1` keeps the same order.
fn placeholders(sql: &str, backend: DbBackend) -> String {
    if backend == DbBackend::Postgres {
        sql.to_owned()
    } else {
        sql.replace('$', "?")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.cleanup {
            Cleanup::Nothing => {}
            Cleanup::SqliteFile(path) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut file = path.clone().into_os_string();
                    file.push(suffix);
                    let _ = std::fs::remove_file(file);
                }
            }
            Cleanup::PostgresDatabase { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime; a thread of its own may block.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .ok()?;
                    runtime.block_on(async {
                        let admin = api::db::connect(&admin_url).await.ok()?;
                        admin
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .await
                            .ok()
                    })
                })
                .join();
            }
        }
    }
}

/// Declares each test twice, `<name>::sqlite` and `<name>::postgres`, with `$db` bound to a
/// fresh `TestDb` of that backend.
macro_rules! on_both_backends {
    ($(#[$meta:meta])* async fn $name:ident($db:ident) $body:block $($rest:tt)*) => {
        $(#[$meta])*
        mod $name {
            use super::*;

            #[tokio::test]
            async fn sqlite() {
                let $db = $crate::common::TestDb::sqlite().await;
                $body
            }

            #[tokio::test]
            async fn postgres() {
                let Some($db) = $crate::common::TestDb::postgres().await else {
                    return;
                };
                $body
            }
        }
        on_both_backends! { $($rest)* }
    };
    () => {};
}
pub(crate) use on_both_backends;
