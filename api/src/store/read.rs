//! Listing, counting and fetching rows.

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::sea_query::{
    Alias, Asterisk, Expr, ExprTrait, JoinType, Order, Query, SelectStatement,
};
use sea_orm::{ConnectionTrait, DbBackend, Value};
use uuid::Uuid;

use super::filter::Filter;
use super::order::Ordering;
use super::scope::Scope;
use super::values::decode;
use crate::error::ApiResult;
use crate::tables::Table;

/// A row: one slot per table column, `None` where the column was not selected.
#[derive(Clone, Debug, Default)]
pub struct Row(pub Vec<Option<Value>>);

impl Row {
    /// The row's `id`.
    pub fn id(&self, table: &Table) -> Option<Uuid> {
        match self.0.get(table.id_column())? {
            Some(Value::Uuid(Some(id))) => Some(*id),
            _ => None,
        }
    }

    /// The uuid in column `index`, if selected and not null.
    pub fn uuid(&self, index: usize) -> Option<Uuid> {
        match self.0.get(index)? {
            Some(Value::Uuid(Some(id))) => Some(*id),
            _ => None,
        }
    }
}

/// A set of columns (by index) to select; tables have fewer than 64 columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Columns(u64);

impl Columns {
    /// The set plus column `index`.
    pub fn with(self, index: usize) -> Self {
        Self(self.0 | (1 << index))
    }

    /// Every column of `table`.
    pub fn all(table: &Table) -> Self {
        (0..table.columns.len()).fold(Self::default(), Self::with)
    }

    /// Whether column `index` is in the set.
    pub fn contains(self, index: usize) -> bool {
        self.0 & (1 << index) != 0
    }

    fn indexes(self, table: &Table) -> Vec<usize> {
        (0..table.columns.len())
            .filter(|&i| self.contains(i) && !table.columns[i].secret)
            .collect()
    }
}

/// Which page of rows to return.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// How many rows at most.
    pub limit: u64,
    /// Take the last `limit` rows (`last`) instead of the first (`first`).
    pub backward: bool,
    /// Only rows after this sort key.
    pub after: Option<Vec<Value>>,
    /// Only rows before this sort key.
    pub before: Option<Vec<Value>>,
}

/// What to list: columns, filter, order and page.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    /// The columns to select (the ordering's columns are added).
    pub columns: Columns,
    /// Which rows.
    pub filter: Option<Filter>,
    /// In which order.
    pub ordering: Ordering,
    /// Which slice.
    pub page: Page,
}

/// One page of rows, in the requested order.
#[derive(Clone, Debug, Default)]
pub struct PageRows {
    /// The rows.
    pub rows: Vec<Arc<Row>>,
    /// Whether rows follow the page.
    pub has_next: bool,
    /// Whether rows precede the page.
    pub has_previous: bool,
}

/// Parent ids for a batched read, and the child column that points at them.
#[derive(Clone, Copy, Debug)]
pub struct Parents<'a> {
    /// The foreign-key column on the listed table.
    pub foreign_key: usize,
    /// The parents' ids.
    pub ids: &'a [Uuid],
}

/// `SELECT <columns> FROM table WHERE <scope> AND <filter>`.
pub(super) fn scoped_select<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    filter: Option<&Filter>,
) -> ApiResult<SelectStatement> {
    let mut select = Query::select();
    select.from(table.name).cond_where(scope.condition(table)?);
    if let Some(filter) = filter {
        select.cond_where(filter.condition(table, db.get_database_backend()));
    }
    Ok(select)
}

fn listing<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    query: &ListQuery,
    extra: Columns,
) -> ApiResult<(SelectStatement, Vec<usize>, Ordering)> {
    let mut columns = query.columns.with(table.id_column());
    for term in query.ordering.terms() {
        columns = columns.with(term.column);
    }
    for i in extra.indexes(table) {
        columns = columns.with(i);
    }
    let selected = columns.indexes(table);
    let mut select = scoped_select(db, scope, table, query.filter.as_ref())?;
    for &i in &selected {
        select.expr_as(scope.served(table, i), table.columns[i].name);
    }
    if let Some(after) = &query.page.after {
        select.cond_where(query.ordering.after(table, after));
    }
    if let Some(before) = &query.page.before {
        select.cond_where(query.ordering.reversed().after(table, before));
    }
    let ordering = if query.page.backward {
        query.ordering.reversed()
    } else {
        query.ordering.clone()
    };
    Ok((select, selected, ordering))
}

pub(super) fn read_row(
    result: &sea_orm::QueryResult,
    table: &Table,
    selected: &[usize],
) -> ApiResult<Row> {
    let mut row = vec![None; table.columns.len()];
    for (position, &i) in selected.iter().enumerate() {
        row[i] = Some(decode(result, position, table.columns[i].kind)?);
    }
    Ok(Row(row))
}

fn into_page(rows: Vec<Row>, query: &ListQuery) -> PageRows {
    let more = rows.len() as u64 > query.page.limit;
    let mut rows: Vec<Arc<Row>> = rows
        .into_iter()
        .take(query.page.limit as usize)
        .map(Arc::new)
        .collect();
    if query.page.backward {
        rows.reverse();
        PageRows {
            rows,
            has_next: query.page.before.is_some(),
            has_previous: more,
        }
    } else {
        PageRows {
            rows,
            has_next: more,
            has_previous: query.page.after.is_some(),
        }
    }
}

/// One page of `table`'s rows.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    query: &ListQuery,
) -> ApiResult<PageRows> {
    let (mut select, selected, ordering) = listing(db, scope, table, query, Columns::default())?;
    ordering.apply(table, &mut select);
    select.limit(query.page.limit + 1);
    let rows = db
        .query_all(&select)
        .await?
        .iter()
        .map(|r| read_row(r, table, &selected))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(into_page(rows, query))
}

/// One page of `table`'s rows per parent, in one statement.
///
/// For one parent that is a plain `... WHERE fk = $1 ORDER BY ... LIMIT n`, which an index
/// on the foreign key and the sort columns answers without reading the parent's other
/// children. For several, PostgreSQL runs that same query once per parent through
/// `CROSS JOIN LATERAL`, reading only the rows it keeps; SQLite, which has no `LATERAL`,
/// numbers each parent's rows with `ROW_NUMBER() OVER (PARTITION BY fk ...)` and keeps `n`.
pub async fn list_by_parents<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    query: &ListQuery,
    parents: Parents<'_>,
) -> ApiResult<HashMap<Uuid, PageRows>> {
    let fk = parents.foreign_key;
    let (mut inner, selected, ordering) =
        listing(db, scope, table, query, Columns::default().with(fk))?;
    let fk_name = table.columns[fk].name;
    let statement = match parents.ids {
        [parent] => {
            inner.and_where(Expr::col(fk_name).eq(*parent));
            ordering.apply(table, &mut inner);
            inner.limit(query.page.limit + 1);
            inner
        }
        ids if db.get_database_backend() == DbBackend::Postgres => {
            // `(VALUES ($1), ($2), ...) AS "__parent"`: its one column is `column1`.
            inner.and_where(Expr::col(fk_name).equals(("__parent", "column1")));
            ordering.apply(table, &mut inner);
            inner.limit(query.page.limit + 1);
            let mut outer = Query::select();
            outer
                .column((Alias::new("__page"), Asterisk))
                .from_values(ids.iter().copied(), "__parent")
                .join_lateral(JoinType::InnerJoin, inner, "__page", Expr::cust("TRUE"))
                .order_by(fk_name, Order::Asc);
            // The lateral scans give each parent's rows in order; this says so.
            ordering.apply(table, &mut outer);
            outer
        }
        ids => {
            inner
                .and_where(Expr::col(fk_name).is_in(ids.iter().copied()))
                .expr_as(
                    Expr::cust(format!(
                        "ROW_NUMBER() OVER (PARTITION BY \"{fk_name}\" ORDER BY {})",
                        ordering.window_sql(table)
                    )),
                    "__rn",
                );
            let mut outer = Query::select();
            outer
                .column(Asterisk)
                .from_subquery(inner, "__page")
                .and_where(Expr::col("__rn").lte(query.page.limit + 1))
                .order_by("__rn", Order::Asc);
            outer
        }
    };
    let mut grouped: HashMap<Uuid, Vec<Row>> = HashMap::new();
    for result in db.query_all(&statement).await? {
        let row = read_row(&result, table, &selected)?;
        if let Some(parent) = row.uuid(fk) {
            grouped.entry(parent).or_default().push(row);
        }
    }
    Ok(parents
        .ids
        .iter()
        .map(|parent| {
            let rows = grouped.remove(parent).unwrap_or_default();
            (*parent, into_page(rows, query))
        })
        .collect())
}

/// How many rows of `table` match `filter`.
pub async fn count<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    filter: Option<&Filter>,
) -> ApiResult<u64> {
    let mut select = scoped_select(db, scope, table, filter)?;
    select.expr(Expr::cust("COUNT(*)"));
    let row = db.query_one(&select).await?;
    Ok(match row {
        Some(row) => u64::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or_default(),
        None => 0,
    })
}

/// How many rows of `table` match `filter`, per parent, in one statement.
pub async fn count_by_parents<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    filter: Option<&Filter>,
    parents: Parents<'_>,
) -> ApiResult<HashMap<Uuid, u64>> {
    let fk = table.columns[parents.foreign_key].name;
    let mut select = scoped_select(db, scope, table, filter)?;
    select
        .column(fk)
        .expr(Expr::cust("COUNT(*)"))
        .and_where(Expr::col(fk).is_in(parents.ids.iter().copied()))
        .group_by_col(Alias::new(fk));
    let mut counts = HashMap::new();
    for row in db.query_all(&select).await? {
        let parent: Uuid = row.try_get_by_index(0)?;
        let n: i64 = row.try_get_by_index(1)?;
        counts.insert(parent, u64::try_from(n).unwrap_or_default());
    }
    Ok(counts)
}

/// The rows of `table` with these ids that the scope may see.
pub async fn find_by_ids<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    table: &Table,
    columns: Columns,
    ids: &[Uuid],
) -> ApiResult<HashMap<Uuid, Row>> {
    let id = table.id_column();
    let selected = columns.with(id).indexes(table);
    let mut select = scoped_select(db, scope, table, None)?;
    for &i in &selected {
        select.expr_as(scope.served(table, i), table.columns[i].name);
    }
    select.and_where(Expr::col(table.columns[id].name).is_in(ids.iter().copied()));
    let mut found = HashMap::new();
    for result in db.query_all(&select).await? {
        let row = read_row(&result, table, &selected)?;
        if let Some(key) = row.id(table) {
            found.insert(key, row);
        }
    }
    Ok(found)
}
