//! `stratix check`: seed 001's `validate_schema.sql` as a command, for both backends.
//!
//! Compares the live database with what the code expects: the catalog's tables, the
//! entities' columns (name, type family, nullability), the critical indexes, the triggers,
//! and on PostgreSQL row-level security and the `events` partitions. Then the data: every
//! credit balance against its ledger, rows whose parent is missing, gaps in version
//! sequences, and (PostgreSQL) events waiting in `events_default`.

use std::fmt;

use chrono::{Datelike, Months, Utc};
use entity::registry::{self, EntityColumn};
use migration::catalog::{
    self, CRITICAL_INDEXES, CUSTOMER_LAST_ORDER_TRIGGER, LEDGER_TRIGGER, MESSAGE_COUNTS_TRIGGER,
    NEW_USER_TRIGGER, POSTGRES_INDEXES, TABLES,
};
use migration::introspect::{self, DbColumn};
use sea_orm::sea_query::{Asterisk, Expr, ExprTrait, Func, Query, TableRef};
use sea_orm::{ColumnType, ConnectionTrait, DbBackend, DbErr};

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    /// Whether the check passed.
    pub ok: bool,
    /// What was checked, or what is missing.
    pub message: String,
}

/// Every check's outcome, in order.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The checks run.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    fn push(&mut self, problems: Vec<String>, ok: String, failed: &str) {
        let check = if problems.is_empty() {
            Check {
                ok: true,
                message: ok,
            }
        } else {
            Check {
                ok: false,
                message: format!("{failed}: {}", problems.join(", ")),
            }
        };
        self.checks.push(check);
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for check in &self.checks {
            writeln!(
                f,
                "{} {}",
                if check.ok { "✅" } else { "❌" },
                check.message
            )?;
        }
        if self.passed() {
            writeln!(f, "✅ Schema validation completed successfully")
        } else {
            writeln!(f, "❌ Schema validation failed")
        }
    }
}

/// Runs every check against `db`.
pub async fn run<C: ConnectionTrait>(db: &C) -> Result<Report, DbErr> {
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let mut report = Report::default();

    let existing = introspect::tables(db).await?;
    let missing: Vec<String> = TABLES
        .iter()
        .filter(|t| !existing.contains(t.name))
        .map(|t| t.name.to_owned())
        .collect();
    report.push(
        missing,
        format!("All {} tables exist", TABLES.len()),
        "Missing tables",
    );

    let mut problems = Vec::new();
    let entities = registry::all();
    for entity in &entities {
        let live = introspect::columns(db, entity.table).await?;
        problems.extend(column_problems(
            entity.table,
            &entity.columns,
            &live,
            postgres,
        ));
    }
    let column_count: usize = entities.iter().map(|e| e.columns.len()).sum();
    report.push(
        problems,
        format!(
            "Columns match the entities ({column_count} columns in {} tables)",
            entities.len()
        ),
        "Column mismatches",
    );

    let indexes = introspect::indexes(db).await?;
    let expected = CRITICAL_INDEXES
        .iter()
        .chain(if postgres { POSTGRES_INDEXES } else { &[] });
    let missing: Vec<String> = expected
        .clone()
        .filter(|name| !indexes.contains(**name))
        .map(|name| (*name).to_owned())
        .collect();
    report.push(
        missing,
        format!("All {} critical indexes exist", expected.count()),
        "Missing indexes",
    );

    let triggers = introspect::triggers(db).await?;
    let expected: Vec<(String, String)> = TABLES
        .iter()
        .filter(|t| t.updated_at)
        .map(|t| (t.name.to_owned(), catalog::updated_at_trigger(t.name)))
        .chain([
            ("users".to_owned(), NEW_USER_TRIGGER.to_owned()),
            ("credit_accounts".to_owned(), LEDGER_TRIGGER.to_owned()),
            ("messages".to_owned(), MESSAGE_COUNTS_TRIGGER.to_owned()),
            ("orders".to_owned(), CUSTOMER_LAST_ORDER_TRIGGER.to_owned()),
        ])
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|key| !triggers.contains(*key))
        .map(|(table, name)| format!("{name} on {table}"))
        .collect();
    report.push(
        missing,
        format!("All {} triggers exist", expected.len()),
        "Missing triggers",
    );

    let drifted = ledger_drift(db).await?;
    report.push(
        drifted,
        "Every credit balance equals the sum of its ledger".to_owned(),
        "Credit balances that differ from their ledger",
    );

    let orphans = orphans(db).await?;
    report.push(
        orphans,
        "No row refers to a missing parent".to_owned(),
        "Rows whose parent is missing",
    );

    let mut gaps = Vec::new();
    for (table, group) in VERSIONED {
        gaps.extend(version_gaps(db, table, group).await?);
    }
    report.push(
        gaps,
        "Version sequences run 1, 2, 3... without gaps".to_owned(),
        "Version sequences with gaps",
    );

    if postgres {
        let mut select = Query::select();
        select
            .expr(Expr::col(Asterisk).count())
            .from("events_default");
        let stray: i64 = match db.query_one(&select).await? {
            Some(row) => row.try_get_by_index(0)?,
            None => 0,
        };
        let problems = if stray == 0 {
            Vec::new()
        } else {
            vec![format!(
                "{stray} rows (their month has no partition: `stratix partitions` moves them)"
            )]
        };
        report.push(
            problems,
            "No events wait in events_default".to_owned(),
            "events_default holds rows",
        );

        let security = introspect::row_security(db).await?;
        let missing: Vec<String> = TABLES
            .iter()
            .filter(|t| !matches!(security.get(t.name), Some((true, policies)) if *policies > 0))
            .map(|t| t.name.to_owned())
            .collect();
        report.push(
            missing,
            format!("RLS enabled with policies on all {} tables", TABLES.len()),
            "RLS disabled or without policies",
        );

        let partitions = introspect::partitions(db, "events").await?;
        let now = Utc::now();
        let missing: Vec<String> = [Some(now), now.checked_add_months(Months::new(1))]
            .into_iter()
            .flatten()
            .map(|month| format!("events_{:04}_{:02}", month.year(), month.month()))
            .filter(|name| !partitions.contains(name))
            .collect();
        report.push(
            missing,
            "events partitions exist for this month and next".to_owned(),
            "Missing events partitions",
        );
    }
    Ok(report)
}

/// Tables whose rows carry a version per group, and the group's columns.
const VERSIONED: &[(&str, &[&str])] = &[
    ("content_revisions", &["product_id"]),
    ("patches", &["shop_id", "applied_to"]),
];

/// The groups of `table` whose versions are not exactly 1..n, as `<group>: versions
/// <min>..<max>, <n> rows`.
async fn version_gaps<C: ConnectionTrait>(
    db: &C,
    table: &'static str,
    group: &[&'static str],
) -> Result<Vec<String>, DbErr> {
    let mut select = Query::select();
    select
        .from(table)
        .expr(Expr::col("version").min())
        .expr(Expr::col("version").max())
        .expr(Expr::col(Asterisk).count());
    for column in group {
        select
            .column(*column)
            .group_by_col(*column)
            .order_by(*column, sea_orm::Order::Asc);
    }
    select.and_having(
        Expr::col("version")
            .min()
            .ne(1)
            .or(Expr::col("version").max().ne(Expr::col(Asterisk).count())),
    );
    let mut gaps = Vec::new();
    for row in db.query_all(&select).await? {
        let min: i64 = row.try_get_by_index::<i32>(0).map(i64::from)?;
        let max: i64 = row.try_get_by_index::<i32>(1).map(i64::from)?;
        let count: i64 = row.try_get_by_index(2)?;
        // Group columns are ids or text.
        let key: Vec<String> = (3..3 + group.len())
            .map(|i| {
                row.try_get_by_index::<uuid::Uuid>(i)
                    .map(|id| id.to_string())
                    .or_else(|_| row.try_get_by_index::<String>(i))
            })
            .collect::<Result<_, _>>()?;
        gaps.push(format!(
            "{table} {}: versions {min}..{max}, {count} rows",
            key.join("/")
        ));
    }
    Ok(gaps)
}

/// Rows whose foreign key names a parent that does not exist (the foreign keys refuse
/// them; this finds what got past them, e.g. SQLite edited with foreign keys off), as
/// `<table>.<column>: <n> rows`.
async fn orphans<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let tables = crate::tables::tables();
    let mut orphans = Vec::new();
    for table in &tables.all {
        for relation in &table.relations {
            if relation.kind != entity::registry::RelationKind::BelongsTo {
                continue;
            }
            let parent = &tables.all[relation.other];
            let column = table.columns[relation.foreign_key].name;
            let mut exists = Query::select();
            exists
                .expr(Expr::val(1))
                .from_as(parent.name, "p")
                .and_where(Expr::col(("p", "id")).equals(("c", column)));
            let mut select = Query::select();
            select
                .expr(Expr::col(Asterisk).count())
                .from_as(table.name, "c")
                .and_where(Expr::col(("c", column)).is_not_null())
                .and_where(Expr::exists(exists).not());
            let n: i64 = match db.query_one(&select).await? {
                Some(row) => row.try_get_by_index(0)?,
                None => 0,
            };
            if n > 0 {
                orphans.push(format!("{}.{column}: {n} rows", table.name));
            }
        }
    }
    Ok(orphans)
}

/// The credit accounts whose balance is not the sum of their ledger rows, as
/// `<id>: balance <b>, ledger <l>`.
async fn ledger_drift<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    let ledger = Expr::col(("t", "amount")).sum();
    let sum = Func::coalesce([ledger, Expr::val(0)]);
    let mut select = Query::select();
    select
        .from_as("credit_accounts", "a")
        .left_join(
            TableRef::from("credit_transactions").alias("t"),
            Expr::col(("t", "credit_account_id")).equals(("a", "id")),
        )
        .column(("a", "id"))
        .column(("a", "balance"))
        .expr(Expr::expr(sum.clone()).cast_as("bigint"))
        .group_by_col(("a", "id"))
        .group_by_col(("a", "balance"))
        .and_having(Expr::col(("a", "balance")).ne(Expr::expr(sum)))
        // In a stable order: reports of two copies of a database compare equal.
        .order_by(("a", "id"), sea_orm::Order::Asc);
    let mut drifted = Vec::new();
    for row in db.query_all(&select).await? {
        let id: uuid::Uuid = row.try_get_by_index(0)?;
        let balance: i32 = row.try_get_by_index(1)?;
        let sum: i64 = row.try_get_by_index(2)?;
        drifted.push(format!("{id}: balance {balance}, ledger {sum}"));
    }
    Ok(drifted)
}

fn column_problems(
    table: &str,
    expected: &[EntityColumn],
    live: &[DbColumn],
    postgres: bool,
) -> Vec<String> {
    if live.is_empty() {
        return vec![format!("{table} (no such table)")];
    }
    let mut problems = Vec::new();
    for column in expected {
        let Some(found) = live.iter().find(|c| c.name == column.name) else {
            problems.push(format!("{table}.{} missing", column.name));
            continue;
        };
        let want = entity_family(&column.column_type, postgres);
        let have = database_family(&found.data_type, postgres);
        if want != have {
            problems.push(format!(
                "{table}.{} is {} ({have}), the entity says {want}",
                column.name, found.data_type
            ));
        }
        if column.nullable != found.nullable {
            let null = |n: bool| if n { "nullable" } else { "NOT NULL" };
            problems.push(format!(
                "{table}.{} is {}, the entity says {}",
                column.name,
                null(found.nullable),
                null(column.nullable)
            ));
        }
    }
    for column in live {
        if !expected.iter().any(|c| c.name == column.name) {
            problems.push(format!("{table}.{} has no entity field", column.name));
        }
    }
    problems
}

/// The type family an entity column needs; SQLite stores every integer width alike.
fn entity_family(column_type: &ColumnType, postgres: bool) -> &'static str {
    match column_type {
        ColumnType::Uuid => "uuid",
        ColumnType::Char(_) | ColumnType::String(_) | ColumnType::Text => "text",
        ColumnType::TinyInteger
        | ColumnType::SmallInteger
        | ColumnType::Integer
        | ColumnType::TinyUnsigned
        | ColumnType::SmallUnsigned
        | ColumnType::Unsigned => "integer",
        ColumnType::BigInteger | ColumnType::BigUnsigned if postgres => "bigint",
        ColumnType::BigInteger | ColumnType::BigUnsigned => "integer",
        ColumnType::Float | ColumnType::Double => "float",
        ColumnType::Decimal(_) | ColumnType::Money(_) => "decimal",
        ColumnType::Boolean => "boolean",
        ColumnType::Json | ColumnType::JsonBinary => "json",
        ColumnType::TimestampWithTimeZone => "timestamptz",
        ColumnType::DateTime | ColumnType::Timestamp => "timestamp",
        ColumnType::Date => "date",
        ColumnType::Time => "time",
        ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => "binary",
        _ => "other",
    }
}

/// The type family of a live column: PostgreSQL's `udt_name`, or SQLite's declared type
/// as sea-query writes it (`uuid_text`, `timestamp_with_timezone_text`, `real(14, 2)`, ...).
fn database_family(data_type: &str, postgres: bool) -> &'static str {
    let t = data_type.to_ascii_lowercase();
    let base = t.split('(').next().unwrap_or_default().trim();
    if postgres {
        return match base {
            "uuid" => "uuid",
            "text" | "varchar" | "bpchar" => "text",
            "int2" | "int4" => "integer",
            "int8" => "bigint",
            "float4" | "float8" => "float",
            "numeric" => "decimal",
            "bool" => "boolean",
            "json" | "jsonb" => "json",
            "timestamptz" => "timestamptz",
            "timestamp" => "timestamp",
            "date" => "date",
            "time" => "time",
            "bytea" => "binary",
            _ => "other",
        };
    }
    match base {
        "uuid_text" => "uuid",
        "text" | "varchar" | "char" => "text",
        "integer" | "int" | "bigint" | "smallint" | "tinyint" => "integer",
        "float" | "double" => "float",
        "real" | "real_decimal" | "real_money" | "decimal" | "numeric" => "decimal",
        "boolean" => "boolean",
        "json_text" | "jsonb_text" => "json",
        "timestamp_with_timezone_text" => "timestamptz",
        "timestamp_text" | "datetime_text" => "timestamp",
        "date_text" => "date",
        "time_text" => "time",
        "blob" | "varbinary_blob" | "binary_blob" => "binary",
        _ => "other",
    }
}
