//! Reading the live schema back from the database's own catalog, for `stratix check` and
//! the tests. Each function answers the same question on both backends.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

/// A column as the database reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbColumn {
    /// The column name.
    pub name: String,
    /// PostgreSQL's `udt_name` (`uuid`, `int4`, `jsonb`, ...) or SQLite's declared type.
    pub data_type: String,
    /// Whether the column accepts NULL.
    pub nullable: bool,
}

async fn rows<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<Vec<sea_orm_migration::sea_orm::QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
}

/// The base tables of the current schema (PostgreSQL: not counting partitions).
pub async fn tables<C: ConnectionTrait>(db: &C) -> Result<BTreeSet<String>, DbErr> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT c.relname AS name FROM pg_class c \
             WHERE c.relnamespace = current_schema()::regnamespace \
               AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
    };
    rows(db, sql, vec![])
        .await?
        .iter()
        .map(|row| row.try_get("", "name"))
        .collect()
}

/// The columns of `table`, in table order (empty when the table does not exist).
pub async fn columns<C: ConnectionTrait>(db: &C, table: &str) -> Result<Vec<DbColumn>, DbErr> {
    match db.get_database_backend() {
        DbBackend::Postgres => rows(
            db,
            "SELECT column_name::text AS name, udt_name::text AS data_type, \
                    is_nullable = 'YES' AS nullable \
             FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
            vec![table.into()],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(DbColumn {
                name: row.try_get("", "name")?,
                data_type: row.try_get("", "data_type")?,
                nullable: row.try_get("", "nullable")?,
            })
        })
        .collect(),
        _ => rows(
            db,
            "SELECT name, type AS data_type, \"notnull\" AS not_null, pk \
             FROM pragma_table_info(?) ORDER BY cid",
            vec![table.into()],
        )
        .await?
        .iter()
        .map(|row| {
            let not_null: i32 = row.try_get("", "not_null")?;
            let pk: i32 = row.try_get("", "pk")?;
            Ok(DbColumn {
                name: row.try_get("", "name")?,
                data_type: row.try_get("", "data_type")?,
                nullable: not_null == 0 && pk == 0,
            })
        })
        .collect(),
    }
}

/// The names of every index in the current schema.
pub async fn indexes<C: ConnectionTrait>(db: &C) -> Result<BTreeSet<String>, DbErr> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT indexname::text AS name FROM pg_indexes WHERE schemaname = current_schema()"
        }
        _ => "SELECT name FROM sqlite_master WHERE type = 'index'",
    };
    rows(db, sql, vec![])
        .await?
        .iter()
        .map(|row| row.try_get("", "name"))
        .collect()
}

/// Every user-defined trigger as `(table, trigger)`.
pub async fn triggers<C: ConnectionTrait>(db: &C) -> Result<BTreeSet<(String, String)>, DbErr> {
    let sql = match db.get_database_backend() {
        DbBackend::Postgres => {
            "SELECT c.relname::text AS table_name, t.tgname::text AS name \
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
             WHERE NOT t.tgisinternal AND c.relnamespace = current_schema()::regnamespace"
        }
        _ => "SELECT tbl_name AS table_name, name FROM sqlite_master WHERE type = 'trigger'",
    };
    rows(db, sql, vec![])
        .await?
        .iter()
        .map(|row| Ok((row.try_get("", "table_name")?, row.try_get("", "name")?)))
        .collect()
}

/// Row-level security per table (PostgreSQL): whether it is enabled, and its policy count.
pub async fn row_security<C: ConnectionTrait>(
    db: &C,
) -> Result<BTreeMap<String, (bool, i64)>, DbErr> {
    rows(
        db,
        "SELECT c.relname::text AS name, c.relrowsecurity AS enabled, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies \
         FROM pg_class c \
         WHERE c.relnamespace = current_schema()::regnamespace \
           AND c.relkind IN ('r', 'p') AND NOT c.relispartition",
        vec![],
    )
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get("", "name")?,
            (row.try_get("", "enabled")?, row.try_get("", "policies")?),
        ))
    })
    .collect()
}

/// The partitions of `table` (PostgreSQL), by name.
pub async fn partitions<C: ConnectionTrait>(
    db: &C,
    table: &str,
) -> Result<BTreeSet<String>, DbErr> {
    rows(
        db,
        "SELECT c.relname::text AS name FROM pg_inherits i \
         JOIN pg_class c ON c.oid = i.inhrelid \
         JOIN pg_class p ON p.oid = i.inhparent \
         WHERE p.relname = $1 AND p.relnamespace = current_schema()::regnamespace",
        vec![table.into()],
    )
    .await?
    .iter()
    .map(|row| row.try_get("", "name"))
    .collect()
}
