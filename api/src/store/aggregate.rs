//! Aggregates and grouping over filtered rows, optionally per parent.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, NullOrdering, Order};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use uuid::Uuid;

use super::filter::Filter;
use super::read::{Parents, scoped_select};
use super::scope::Scope;
use super::values::decode;
use crate::error::{ApiError, ApiResult};
use crate::tables::{Table, ValueKind};

/// The most groups one `groupBy` returns.
pub const MAX_GROUPS: u64 = 1000;

/// One aggregate to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// The number of rows.
    Count,
    /// The sum of a numeric column.
    Sum(usize),
    /// The mean of a numeric column.
    Avg(usize),
    /// The least value of an ordered column.
    Min(usize),
    /// The greatest value of an ordered column.
    Max(usize),
}

/// How far to truncate a timestamp before grouping on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Truncate {
    /// To the hour.
    Hour,
    /// To the day (UTC).
    Day,
    /// To the ISO week (Monday, UTC).
    Week,
    /// To the month.
    Month,
    /// To the year.
    Year,
}

/// A column to group by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GroupKey {
    /// The column.
    pub column: usize,
    /// For timestamps: truncate first.
    pub truncate: Option<Truncate>,
}

/// What to aggregate.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateQuery {
    /// Which rows.
    pub filter: Option<Filter>,
    /// Group by these (none: one row over everything).
    pub group: Vec<GroupKey>,
    /// The aggregates, in the order the caller wants them back.
    pub measures: Vec<Measure>,
}

/// One result row: its parent (for batched reads), its group key and its measures.
#[derive(Clone, Debug)]
pub struct AggregateRow {
    /// The group key values, in `group` order.
    pub keys: Vec<Value>,
    /// The measures, in `measures` order.
    pub values: Vec<Value>,
}

impl Measure {
    /// The kind of value this measure yields on `table`.
    pub fn kind(self, table: &Table) -> ValueKind {
        match self {
            Self::Count => ValueKind::BigInt,
            Self::Avg(_) => ValueKind::Float,
            Self::Sum(c) => match table.columns[c].kind {
                ValueKind::Int | ValueKind::BigInt => ValueKind::BigInt,
                other => other,
            },
            Self::Min(c) | Self::Max(c) => table.columns[c].kind,
        }
    }

    fn sql(self, table: &Table) -> String {
        let col = |c: usize| format!("\"{}\"", table.columns[c].name);
        match self {
            Self::Count => "COUNT(*)".to_owned(),
            Self::Sum(c) => match self.kind(table) {
                ValueKind::BigInt => format!("CAST(SUM({}) AS BIGINT)", col(c)),
                ValueKind::Float => format!("CAST(SUM({}) AS DOUBLE PRECISION)", col(c)),
                _ => format!("SUM({})", col(c)),
            },
            Self::Avg(c) => format!("CAST(AVG({}) AS DOUBLE PRECISION)", col(c)),
            Self::Min(c) => format!("MIN({})", col(c)),
            Self::Max(c) => format!("MAX({})", col(c)),
        }
    }
}

impl GroupKey {
    fn sql(self, table: &Table, backend: DbBackend) -> String {
        let col = format!("\"{}\"", table.columns[self.column].name);
        let Some(truncate) = self.truncate else {
            return col;
        };
        if backend == DbBackend::Postgres {
            let unit = match truncate {
                Truncate::Hour => "hour",
                Truncate::Day => "day",
                Truncate::Week => "week",
                Truncate::Month => "month",
                Truncate::Year => "year",
            };
            return format!("date_trunc('{unit}', {col}, 'UTC')");
        }
        let (format, modifiers) = match truncate {
            Truncate::Hour => ("%Y-%m-%dT%H:00:00+00:00", ""),
            Truncate::Day => ("%Y-%m-%dT00:00:00+00:00", ""),
            Truncate::Week => ("%Y-%m-%dT00:00:00+00:00", ", 'weekday 0', '-6 days'"),
            Truncate::Month => ("%Y-%m-01T00:00:00+00:00", ""),
            Truncate::Year => ("%Y-01-01T00:00:00+00:00", ""),
        };
        format!("strftime('{format}', {col}{modifiers})")
    }
}

/// Computes `query` over `table`'s visible rows, once overall or (with `parents`) once per
/// parent, in one statement. Groups come back ordered by their keys, at most
/// [`MAX_GROUPS`] of them (per parent).
pub async fn aggregate<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    query: &AggregateQuery,
    parents: Option<Parents<'_>>,
) -> ApiResult<HashMap<Option<Uuid>, Vec<AggregateRow>>> {
    let backend = db.get_database_backend();
    for key in &query.group {
        if key.truncate.is_some() && table.columns[key.column].kind != ValueKind::DateTime {
            return Err(ApiError::bad_input(
                "groupBy",
                format!(
                    "{} is not a timestamp and cannot be truncated",
                    table.columns[key.column].name
                ),
            ));
        }
    }
    let mut select = scoped_select(db, scope, table, query.filter.as_ref())?;
    let mut group_sql = Vec::new();
    if let Some(parents) = parents {
        let fk = table.columns[parents.foreign_key].name;
        select.and_where(Expr::col(fk).is_in(parents.ids.iter().copied()));
        group_sql.push(format!("\"{fk}\""));
    }
    group_sql.extend(query.group.iter().map(|k| k.sql(table, backend)));
    for sql in &group_sql {
        select.expr(Expr::cust(sql.clone()));
    }
    for measure in &query.measures {
        select.expr(Expr::cust(measure.sql(table)));
    }
    if !group_sql.is_empty() {
        select.add_group_by(group_sql.iter().map(|sql| Expr::cust(sql.clone())));
        for sql in &group_sql {
            select.order_by_expr_with_nulls(
                Expr::cust(sql.clone()),
                Order::Asc,
                NullOrdering::Last,
            );
        }
    }
    if !query.group.is_empty() && parents.is_none() {
        select.limit(MAX_GROUPS);
    }
    let mut out: HashMap<Option<Uuid>, Vec<AggregateRow>> = HashMap::new();
    for result in db.query_all(&select).await? {
        let mut at = 0;
        let parent = match parents {
            Some(_) => {
                at = 1;
                Some(result.try_get_by_index::<Uuid>(0)?)
            }
            None => None,
        };
        let keys = query
            .group
            .iter()
            .map(|k| {
                let kind = table.columns[k.column].kind;
                at += 1;
                decode(&result, at - 1, kind)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let values = query
            .measures
            .iter()
            .map(|m| {
                at += 1;
                decode(&result, at - 1, m.kind(table))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let groups = out.entry(parent).or_default();
        if (groups.len() as u64) < MAX_GROUPS {
            groups.push(AggregateRow { keys, values });
        }
    }
    Ok(out)
}
