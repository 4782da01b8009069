//! Building blocks shared by the table migrations, so that every table gets the same
//! primary key, timestamps and foreign-key shape on both backends.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{pk_uuid, timestamp_with_time_zone};
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

/// SQLite's `now()`: RFC 3339 in UTC with a `+00:00` offset, the text form the service
/// writes too, so that timestamps compare and sort as text whichever side wrote them.
pub const SQLITE_NOW: &str = "strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now')";

/// SQLite's `gen_random_uuid()`: a version 4 uuid as the 16-byte blob sea-orm stores.
pub const SQLITE_NEW_UUID: &str = "unhex(hex(randomblob(6)) || '4' || substr(hex(randomblob(2)), 2) \
     || substr('89ab', 1 + (random() & 3), 1) || substr(hex(randomblob(2)), 2) || hex(randomblob(6)))";

/// Backend-aware column and constraint builders for one migration run.
#[derive(Clone, Copy, Debug)]
pub struct Ddl {
    backend: DbBackend,
}

impl Ddl {
    /// The builders for the database `manager` is migrating.
    pub fn of(manager: &SchemaManager<'_>) -> Self {
        Self {
            backend: manager.get_database_backend(),
        }
    }

    /// Whether the database is PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        self.backend == DbBackend::Postgres
    }

    /// The expression for a fresh uuid.
    pub fn new_uuid(&self) -> Expr {
        if self.is_postgres() {
            Expr::cust("gen_random_uuid()")
        } else {
            Expr::cust(format!("({SQLITE_NEW_UUID})"))
        }
    }

    /// The expression for the current time.
    pub fn now(&self) -> Expr {
        if self.is_postgres() {
            Expr::cust("now()")
        } else {
            Expr::cust(format!("({SQLITE_NOW})"))
        }
    }

    /// `id uuid PRIMARY KEY`, filled by the database when an insert leaves it out.
    pub fn id(&self) -> ColumnDef {
        pk_uuid("id").default(self.new_uuid()).take()
    }

    /// A non-null timestamp column that defaults to the current time.
    pub fn timestamp_now(&self, column: &'static str) -> ColumnDef {
        timestamp_with_time_zone(column).default(self.now()).take()
    }

    /// `created_at timestamptz NOT NULL DEFAULT now()`.
    pub fn created_at(&self) -> ColumnDef {
        self.timestamp_now("created_at")
    }

    /// `updated_at timestamptz NOT NULL DEFAULT now()`, kept current by a trigger.
    pub fn updated_at(&self) -> ColumnDef {
        self.timestamp_now("updated_at")
    }
}

/// A foreign key from `table(columns)` to `parent(parent_columns)`.
///
/// Children of a tenant-owned parent reference `(parent_id, owner)` against the parent's
/// `(id, owner)` unique key, so the database itself refuses a row whose owner differs
/// from its parent's.
pub fn foreign_key(
    table: &'static str,
    columns: &[&'static str],
    parent: &'static str,
    parent_columns: &[&'static str],
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    let mut fk = ForeignKey::create();
    fk.name(format!("fk_{table}_{}", columns.join("_")))
        .from_tbl(table)
        .to_tbl(parent)
        .on_delete(on_delete);
    for column in columns {
        fk.from_col(*column);
    }
    for column in parent_columns {
        fk.to_col(*column);
    }
    fk
}

/// Creates a (non-unique) index.
pub async fn index(
    manager: &SchemaManager<'_>,
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for column in columns {
        stmt.col(*column);
    }
    manager.create_index(stmt).await
}

/// Creates a unique index.
pub async fn unique_index(
    manager: &SchemaManager<'_>,
    name: &'static str,
    table: &'static str,
    columns: &[&'static str],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).unique();
    for column in columns {
        stmt.col(*column);
    }
    manager.create_index(stmt).await
}

/// Runs SQL that both backends accept as written (expression or partial indexes, say).
pub async fn sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await?;
    Ok(())
}

/// Drops trigger `name` of `table`, and on PostgreSQL the trigger function it ran.
pub async fn drop_trigger(
    manager: &SchemaManager<'_>,
    name: &str,
    table: &str,
    function: &str,
) -> Result<(), DbErr> {
    let drop = if Ddl::of(manager).is_postgres() {
        format!("DROP TRIGGER IF EXISTS {name} ON {table}; DROP FUNCTION IF EXISTS {function}()")
    } else {
        format!("DROP TRIGGER IF EXISTS {name}")
    };
    sql(manager, &drop).await
}

/// Runs SQL on PostgreSQL only (GIN indexes, policies, partitions).
pub async fn postgres_only(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    if Ddl::of(manager).is_postgres() {
        manager.get_connection().execute_unprepared(sql).await?;
    }
    Ok(())
}

/// Drops the given tables, in the order given (children first).
pub async fn drop_tables(
    manager: &SchemaManager<'_>,
    tables: &[&'static str],
) -> Result<(), DbErr> {
    for table in tables {
        manager
            .drop_table(Table::drop().table(*table).if_exists().to_owned())
            .await?;
    }
    Ok(())
}

/// Replaces the CHECK constraint `name` of `table` with `CHECK (expr)`, which must accept
/// every row the old one did (a loosening: a new status, a new kind).
///
/// PostgreSQL drops and re-adds it (validating the rows). SQLite cannot alter a constraint;
/// its documented way for a change that leaves the stored rows as they are is to edit the
/// table's definition in `sqlite_schema` and bump the schema version, so the migration must
/// run in a transaction (one connection). The rows are checked against `expr` first.
pub async fn replace_check(
    manager: &SchemaManager<'_>,
    table: &str,
    name: &str,
    expr: &str,
) -> Result<(), DbErr> {
    let db = manager.get_connection();
    if Ddl::of(manager).is_postgres() {
        return sql(
            manager,
            &format!(
                "ALTER TABLE {table} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} CHECK ({expr})"
            ),
        )
        .await;
    }
    let backend = db.get_database_backend();
    let scalar = |query: String| async move {
        db.query_one_raw(Statement::from_string(backend, query))
            .await?
            .ok_or_else(|| DbErr::Migration("no answer from SQLite".to_owned()))
    };
    let refused: i64 = scalar(format!("SELECT count(*) FROM {table} WHERE NOT ({expr})"))
        .await?
        .try_get_by_index(0)?;
    if refused > 0 {
        return Err(DbErr::Migration(format!(
            "{refused} rows of {table} would break the new {name}"
        )));
    }
    let definition: String = scalar(format!(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
    ))
    .await?
    .try_get_by_index(0)?;
    let marker = format!("CONSTRAINT \"{name}\" CHECK (");
    let start = definition
        .find(&marker)
        .ok_or_else(|| DbErr::Migration(format!("{table} has no constraint {name}")))?
        + marker.len();
    // The expression ends at the parenthesis that closes the one the marker opened.
    let mut depth = 1;
    let end = definition[start..]
        .char_indices()
        .find_map(|(i, c)| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            (depth == 0).then_some(start + i)
        })
        .ok_or_else(|| DbErr::Migration(format!("{name} is not closed in {table}")))?;
    let replaced = format!("{}{expr}{}", &definition[..start], &definition[end..]);
    let version: i64 = scalar("PRAGMA schema_version".to_owned())
        .await?
        .try_get_by_index(0)?;
    db.execute_unprepared("PRAGMA writable_schema = ON").await?;
    db.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
        [replaced.into(), table.into()],
    ))
    .await?;
    db.execute_unprepared(&format!("PRAGMA schema_version = {}", version + 1))
        .await?;
    db.execute_unprepared("PRAGMA writable_schema = OFF")
        .await?;
    Ok(())
}
