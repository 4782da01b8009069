//! `stratix check`: seed 001's `validate_schema.sql` as a command, for both backends.
//!
//! Compares the live database with what the code expects: the catalog's tables, the
//! entities' columns (name, type family, nullability), the critical indexes, the triggers,
//! and on PostgreSQL row-level security and the `events` partitions.

use std::fmt;

use chrono::{Datelike, Months, Utc};
use entity::registry::{self, EntityColumn};
use migration::catalog::{
    self, CRITICAL_INDEXES, LEDGER_TRIGGER, MESSAGE_COUNTS_TRIGGER, NEW_USER_TRIGGER,
    POSTGRES_INDEXES, TABLES,
};
use migration::introspect::{self, DbColumn};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query, TableRef};
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

    if postgres {
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
        .and_having(Expr::col(("a", "balance")).ne(Expr::expr(sum)));
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
