//! Generated writes over any table: create, update, delete and bulk upsert, as each
//! table's declaration allows (`migration::catalog::Writes`), under the write rule
//! ([`Scope::write_condition`]).
//!
//! The server sets the id and the owner key: from the principal, from the parent row the
//! input refers to, or (for `service_role` only) from the input. A reference to a row the
//! caller cannot see, or to another tenant's row, is answered exactly like a missing one.
//! Input problems are collected into [`Problem`]s before anything is written; what only
//! the database can tell (a unique key taken) comes back the same way, through
//! [`classify`]. Every write is recorded in the request's [`Outbox`].
//!
//! Nothing here knows GraphQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query, ReturningClause};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Value};
use uuid::Uuid;

use super::outbox::Outbox;
use super::read::{Columns, Row, find_by_ids, read_row};
use super::scope::Scope;
use super::values::{is_null, to_json};
use super::violation::classify;
use crate::error::{ApiError, InputCode};
use crate::realtime::{Op, Write};
use crate::tables::{Table, tables};

/// A row's values as a client gave them: (column index, value).
pub type Assignments = Vec<(usize, Value)>;

/// Where in the input a problem is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// A column's input field.
    Column(usize),
    /// The id of the row to change.
    Id,
    /// The version the caller expected (`expectedUpdatedAt`).
    Version,
    /// The input as a whole.
    Whole,
}

/// One thing wrong with the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Which row of a bulk input (`None` for a single row).
    pub row: Option<usize>,
    /// Which field.
    pub field: Field,
    /// What kind of problem.
    pub code: InputCode,
    /// For people.
    pub message: String,
}

/// Why a write did not happen.
#[derive(Clone, Debug)]
pub enum WriteError {
    /// The input has problems; nothing was written.
    Rejected(Vec<Problem>),
    /// Anything else (not allowed at all, the database failed).
    Failed(ApiError),
}

impl From<ApiError> for WriteError {
    fn from(error: ApiError) -> Self {
        Self::Failed(error)
    }
}

/// The most rows one bulk upsert takes.
pub const MAX_UPSERT: usize = 250;

/// Writes rows of any table for one request.
pub struct Writer<'a, C> {
    /// The request's database.
    pub db: &'a C,
    /// Whose rows it may write.
    pub scope: &'a Scope,
    /// Where its writes are recorded.
    pub outbox: &'a Outbox,
    /// The table's own rules for client values, beyond its columns' (a domain's: an
    /// avatar URL must be https, say).
    pub rule: Option<Rule>,
}

/// A domain's rule for one column's value: `Err((code, message))` refuses it.
pub type Rule = fn(column: &str, value: &Value) -> std::result::Result<(), (InputCode, String)>;

type Result<T> = std::result::Result<T, WriteError>;

fn problem(
    row: Option<usize>,
    field: Field,
    code: InputCode,
    message: impl Into<String>,
) -> Problem {
    Problem {
        row,
        field,
        code,
        message: message.into(),
    }
}

/// Refuses the write with `problems`, each said once (the owner key is both a
/// reference and the owner: one problem of it is enough).
fn rejected<T>(mut problems: Vec<Problem>) -> Result<T> {
    let mut seen = Vec::new();
    problems.retain(|p| {
        let key = (p.row, p.field);
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    Err(WriteError::Rejected(problems))
}

/// A statement's failure: a constraint violation becomes a problem of `row`, anything
/// else an internal error. A missing reference the database does not name (SQLite's
/// foreign-key errors) is `unchecked`'s, the one reference not looked up before writing.
fn failure(
    error: DbErr,
    table: &Table,
    row: Option<usize>,
    unchecked: Option<usize>,
) -> WriteError {
    match classify(&error, table) {
        Some(violation) => {
            let column = match violation.code {
                InputCode::NotFound => violation.column.or(unchecked),
                _ => violation.column,
            };
            WriteError::Rejected(vec![problem(
                row,
                column.map_or(Field::Whole, Field::Column),
                violation.code,
                violation.message,
            )])
        }
        None => WriteError::Failed(error.into()),
    }
}

fn owner_index(table: &Table) -> Option<usize> {
    table.column_index(table.spec?.owner_column)
}

fn uuid_of(value: &Value) -> Option<Uuid> {
    match value {
        Value::Uuid(Some(id)) => Some(*id),
        _ => None,
    }
}

/// The columns every write returns: all but the secrets.
fn readable(table: &Table) -> Vec<usize> {
    (0..table.columns.len())
        .filter(|&i| !table.columns[i].secret)
        .collect()
}

fn returning(table: &Table, columns: &[usize]) -> ReturningClause {
    Query::returning().columns(columns.iter().map(|&i| table.columns[i].name))
}

/// The change event of a written row.
fn change(table: &'static Table, op: Op, row: &Row) -> Option<Write> {
    let id = row.id(table)?;
    let owner = owner_index(table).and_then(|i| row.uuid(i));
    let write = Write::new(table.name, op, id, owner);
    let key = table
        .spec
        .and_then(|spec| spec.feed_key)
        .and_then(|column| table.column_index(column))
        .and_then(|i| row.uuid(i));
    Some(match key {
        Some(key) => write.key(key),
        None => write,
    })
}

/// Checks values against their columns: settable, not null where required, not too long.
fn check_values(
    table: &Table,
    allowed: &[usize],
    rule: Option<Rule>,
    row: Option<usize>,
    values: &Assignments,
    problems: &mut Vec<Problem>,
) {
    for (column, value) in values {
        let at = Field::Column(*column);
        let Some(def) = table
            .columns
            .get(*column)
            .filter(|_| allowed.contains(column))
        else {
            problems.push(problem(row, at, InputCode::Invalid, "cannot be set"));
            continue;
        };
        if is_null(value) && !def.nullable {
            problems.push(problem(row, at, InputCode::Blank, "can't be blank"));
        }
        if let Some(Err((code, message))) =
            rule.filter(|_| !is_null(value)).map(|r| r(def.name, value))
        {
            problems.push(problem(row, at, code, message));
        }
        // A row written already expired would be invisible to its writer.
        if let (Value::ChronoDateTimeUtc(Some(at_time)), Some(expires)) =
            (value, table.spec.and_then(|s| s.expires))
            && expires == def.name
            && *at_time <= Utc::now()
        {
            problems.push(problem(
                row,
                at,
                InputCode::Invalid,
                "must be in the future",
            ));
        }
        if let (Value::String(Some(text)), Some(max)) = (value, def.max_len)
            && text.chars().count() > max as usize
        {
            problems.push(problem(
                row,
                at,
                InputCode::TooLong,
                format!("is longer than {max} characters"),
            ));
        }
    }
}

/// The natural key of a row's values, as text to compare and look up by.
fn key_text(key: &[usize], values: &Assignments) -> String {
    key.iter()
        .map(|k| {
            values
                .iter()
                .find(|(c, _)| c == k)
                .map_or(serde_json::Value::Null, |(_, v)| to_json(v))
                .to_string()
        })
        .collect::<Vec<_>>()
        .join("\u{1f}")
}

/// The owners of the rows `values` refer to, per foreign-key column: `Some(owner)` for a
/// row the scope sees (the owner `None` for a shared row), nothing for any other id.
type Parents = HashMap<(usize, Uuid), Option<Uuid>>;

impl<C: ConnectionTrait> Writer<'_, C> {
    /// The reference not looked up before writing: the owner key a `service_role` names,
    /// whose existence is the foreign key's to check (the service sees every row).
    fn unchecked(&self, table: &Table) -> Option<usize> {
        owner_index(table).filter(|_| *self.scope == Scope::Service)
    }

    /// The parents a row of `table` refers to that are looked up before writing: every
    /// foreign key but [`Writer::unchecked`]'s.
    fn checked_references<'t>(
        &self,
        table: &'t Table,
    ) -> impl Iterator<Item = &'t crate::tables::Relation> {
        let unchecked = self.unchecked(table);
        table.relations.iter().filter(move |r| {
            r.kind == entity::registry::RelationKind::BelongsTo && Some(r.foreign_key) != unchecked
        })
    }

    /// Looks up every row `rows` refer to, one statement per foreign-key column.
    async fn parents(&self, table: &Table, rows: &[&Assignments]) -> Result<Parents> {
        let mut found = Parents::new();
        for relation in self.checked_references(table) {
            let mut ids: Vec<Uuid> = rows
                .iter()
                .flat_map(|values| values.iter())
                .filter(|(column, _)| *column == relation.foreign_key)
                .filter_map(|(_, value)| uuid_of(value))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            if ids.is_empty() {
                continue;
            }
            let parent = &tables().all[relation.other];
            let owner = owner_index(parent);
            let columns = owner.map_or(Columns::default(), |o| Columns::default().with(o));
            let rows = find_by_ids(self.db, self.scope, parent, columns, &ids).await?;
            for (id, row) in rows {
                found.insert((relation.foreign_key, id), owner.and_then(|o| row.uuid(o)));
            }
        }
        Ok(found)
    }

    /// Checks the references of one row that will be owned by `owner`: each must be a
    /// row the scope sees, of the same owner where the parent has one of the same kind.
    fn check_references(
        &self,
        table: &Table,
        row: Option<usize>,
        values: &Assignments,
        owner: Option<Uuid>,
        parents: &Parents,
        problems: &mut Vec<Problem>,
    ) {
        let tenant = table.spec.map(|spec| spec.tenant);
        for relation in self.checked_references(table) {
            let Some(id) = values
                .iter()
                .find(|(column, _)| *column == relation.foreign_key)
                .and_then(|(_, value)| uuid_of(value))
            else {
                continue;
            };
            let same_tenant = tables().all[relation.other].spec.map(|s| s.tenant) == tenant;
            let ok = match parents.get(&(relation.foreign_key, id)) {
                None => false,
                Some(Some(parent_owner)) if same_tenant => owner == Some(*parent_owner),
                Some(_) => true,
            };
            if !ok {
                problems.push(problem(
                    row,
                    Field::Column(relation.foreign_key),
                    InputCode::NotFound,
                    "no such row",
                ));
            }
        }
    }

    /// The owner of a new row: named in the input, else its parent's, else the
    /// principal's; then it must be one the scope may write.
    fn owner(
        &self,
        table: &Table,
        row: Option<usize>,
        values: &Assignments,
        parents: &Parents,
        problems: &mut Vec<Problem>,
    ) -> Option<Uuid> {
        let (Some(spec), Some(owner_at)) = (table.spec, owner_index(table)) else {
            return None;
        };
        let named = values
            .iter()
            .find(|(column, _)| *column == owner_at)
            .map(|(_, value)| uuid_of(value));
        let from_parent = || {
            table.relations.iter().find_map(|relation| {
                if relation.foreign_key == owner_at
                    || tables().all[relation.other].spec.map(|s| s.tenant) != Some(spec.tenant)
                {
                    return None;
                }
                let id = values
                    .iter()
                    .find(|(column, _)| *column == relation.foreign_key)
                    .and_then(|(_, value)| uuid_of(value))?;
                parents.get(&(relation.foreign_key, id)).copied().flatten()
            })
        };
        let owner = match named {
            Some(named) => named,
            None => from_parent().or_else(|| self.scope.own_key(table)),
        };
        let shared = spec.shared_when_null && *self.scope == Scope::Service;
        match owner {
            Some(owner) if self.scope.may_write(table, Some(owner)) => Some(owner),
            None if shared => None,
            None if named.is_none() => {
                problems.push(problem(
                    row,
                    Field::Column(owner_at),
                    InputCode::Blank,
                    "name the owner: it follows from neither the caller nor a parent row",
                ));
                None
            }
            _ => {
                problems.push(problem(
                    row,
                    Field::Column(owner_at),
                    InputCode::NotFound,
                    "no such row",
                ));
                None
            }
        }
    }

    /// Checks new rows and gives each its id and owner: the full values to insert.
    async fn prepare(
        &self,
        table: &Table,
        rows: &[(Option<usize>, &Assignments)],
    ) -> Result<Vec<(Uuid, Assignments)>> {
        let allowed = table.create_columns();
        let mut problems = Vec::new();
        for (row, values) in rows {
            check_values(table, &allowed, self.rule, *row, values, &mut problems);
        }
        let all: Vec<&Assignments> = rows.iter().map(|(_, values)| *values).collect();
        let parents = self.parents(table, &all).await?;
        let owner_at = owner_index(table);
        let mut prepared = Vec::with_capacity(rows.len());
        for (row, values) in rows {
            let owner = self.owner(table, *row, values, &parents, &mut problems);
            self.check_references(table, *row, values, owner, &parents, &mut problems);
            let id = Uuid::new_v4();
            let mut full: Assignments = vec![(table.id_column(), Value::from(id))];
            if let Some(owner_at) = owner_at.filter(|&o| o != table.id_column()) {
                full.push((owner_at, Value::Uuid(owner)));
            }
            full.extend(
                values
                    .iter()
                    .filter(|(column, _)| Some(*column) != owner_at)
                    .cloned(),
            );
            prepared.push((id, full));
        }
        if problems.is_empty() {
            Ok(prepared)
        } else {
            rejected(problems)
        }
    }

    /// Creates one row.
    pub async fn create(&self, table: &'static Table, values: &Assignments) -> Result<Row> {
        if !table.spec.is_some_and(|s| s.writes.create) {
            return Err(
                ApiError::Forbidden(format!("{} rows cannot be created", table.name)).into(),
            );
        }
        let (_, full) = self
            .prepare(table, &[(None, values)])
            .await?
            .pop()
            .ok_or_else(|| ApiError::Internal("nothing prepared".to_owned()))?;
        let columns = readable(table);
        let mut insert = Query::insert();
        insert
            .into_table(table.name)
            .columns(full.iter().map(|(i, _)| table.columns[*i].name))
            .values(full.into_iter().map(|(_, v)| Expr::val(v)))
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .returning(returning(table, &columns));
        let result = self
            .db
            .query_one(&insert)
            .await
            .map_err(|e| failure(e, table, None, self.unchecked(table)))?
            .ok_or_else(|| ApiError::Internal("insert returned no row".to_owned()))?;
        let row = read_row(&result, table, &columns)?;
        if let Some(write) = change(table, Op::Insert, &row) {
            self.outbox.record(write);
        }
        Ok(row)
    }

    /// Creates or updates rows on the table's natural key, all or nothing: every row is
    /// checked first, then one statement per set of columns given.
    pub async fn upsert(&self, table: &'static Table, rows: &[Assignments]) -> Result<Vec<Row>> {
        let Some(spec) = table.spec.filter(|s| !s.writes.upsert_key.is_empty()) else {
            return Err(
                ApiError::Forbidden(format!("{} rows cannot be upserted", table.name)).into(),
            );
        };
        let key: Vec<usize> = spec
            .writes
            .upsert_key
            .iter()
            .filter_map(|c| table.column_index(c))
            .collect();
        let owner_at = owner_index(table);
        let indexed: Vec<(Option<usize>, &Assignments)> =
            rows.iter().enumerate().map(|(i, v)| (Some(i), v)).collect();
        let prepared = self.prepare(table, &indexed).await?;
        // Every key column given (the owner is the server's), and no key twice.
        let mut problems = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        let key_of = |full: &Assignments| key_text(&key, full);
        for (i, (_, full)) in prepared.iter().enumerate() {
            for &k in &key {
                let given = full.iter().any(|(c, v)| *c == k && !is_null(v));
                if !given && Some(k) != owner_at {
                    problems.push(problem(
                        Some(i),
                        Field::Column(k),
                        InputCode::Blank,
                        "can't be blank",
                    ));
                }
            }
            if let Some(first) = seen.insert(key_of(full), i) {
                let last = key.iter().rev().find(|&&k| Some(k) != owner_at).copied();
                problems.push(problem(
                    Some(i),
                    last.map_or(Field::Whole, Field::Column),
                    InputCode::Taken,
                    format!("the same key as row {first}"),
                ));
            }
        }
        if !problems.is_empty() {
            return rejected(problems);
        }
        // PostgreSQL returns each row as its triggers left it, and whether the statement
        // inserted it (`xmax = 0`: no earlier version). SQLite's `updated_at` trigger runs
        // after `RETURNING`, so there the keys are looked up before, to tell inserts from
        // updates, and the rows read after.
        let postgres = self.db.get_database_backend() == DbBackend::Postgres;
        let existing = if postgres {
            std::collections::HashSet::new()
        } else {
            self.existing_keys(table, &key, &prepared).await?
        };
        let fixed: Vec<usize> = spec
            .writes
            .fixed
            .iter()
            .filter_map(|c| table.column_index(c))
            .collect();
        // Rows given the same columns share one statement.
        let mut groups: HashMap<Vec<usize>, Vec<usize>> = HashMap::new();
        for (i, (_, full)) in prepared.iter().enumerate() {
            let mut columns: Vec<usize> = full.iter().map(|(c, _)| *c).collect();
            columns.sort_unstable();
            groups.entry(columns).or_default().push(i);
        }
        let mut ids: HashMap<String, Uuid> = HashMap::new();
        let mut written: HashMap<Uuid, Row> = HashMap::new();
        let mut inserted: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
        for (columns, members) in groups {
            let mut updates: Vec<&str> = columns
                .iter()
                .filter(|c| {
                    !key.contains(c)
                        && !fixed.contains(c)
                        && **c != table.id_column()
                        && Some(**c) != owner_at
                })
                .map(|&c| table.columns[c].name)
                .collect();
            if updates.is_empty() {
                // Still return the existing row: a no-op update of the key.
                updates.extend(key.last().map(|&k| table.columns[k].name));
            }
            let mut insert = Query::insert();
            insert
                .into_table(table.name)
                .columns(columns.iter().map(|&c| table.columns[c].name))
                .on_conflict(
                    OnConflict::columns(key.iter().map(|&k| table.columns[k].name))
                        .update_columns(updates)
                        .to_owned(),
                );
            for &member in &members {
                let full = &prepared[member].1;
                let values = columns.iter().map(|c| {
                    full.iter()
                        .find(|(column, _)| column == c)
                        .map_or(Expr::val(Value::Uuid(None)), |(_, v)| Expr::val(v.clone()))
                });
                insert
                    .values(values)
                    .map_err(|e| ApiError::Internal(e.to_string()))?;
            }
            let returned: Vec<usize> = if postgres {
                readable(table)
            } else {
                std::iter::once(table.id_column())
                    .chain(key.iter().copied())
                    .collect()
            };
            if postgres {
                let columns = returned.iter().map(|&i| Expr::col(table.columns[i].name));
                let is_new = Expr::cust("xmax = 0");
                insert.returning(ReturningClause::Exprs(columns.chain([is_new]).collect()));
            } else {
                insert.returning(returning(table, &returned));
            }
            let at = (members.len() == 1).then(|| members[0]);
            let results = self
                .db
                .query_all(&insert)
                .await
                .map_err(|e| failure(e, table, at, self.unchecked(table)))?;
            for result in results {
                let row = read_row(&result, table, &returned)?;
                let full: Assignments = key
                    .iter()
                    .filter_map(|&c| row.0[c].clone().map(|v| (c, v)))
                    .collect();
                if let Some(id) = row.id(table) {
                    ids.insert(key_of(&full), id);
                    if postgres {
                        if result
                            .try_get_by_index::<bool>(returned.len())
                            .map_err(ApiError::from)?
                        {
                            inserted.insert(id);
                        }
                        written.insert(id, row);
                    }
                }
            }
        }
        let order: Vec<Uuid> = prepared
            .iter()
            .map(|(_, full)| ids.get(&key_of(full)).copied())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                ApiError::Internal("an upserted row came back without its key".to_owned())
            })?;
        let changed: Vec<_> = order
            .iter()
            .zip(rows)
            .enumerate()
            .map(|(row, (&id, values))| (Some(row), id, values))
            .collect();
        self.keep_tree(table, &changed).await?;
        let mut found = if postgres {
            written
        } else {
            find_by_ids(self.db, self.scope, table, Columns::all(table), &order).await?
        };
        let mut out = Vec::with_capacity(order.len());
        for (i, id) in order.iter().enumerate() {
            let row = found
                .remove(id)
                .ok_or_else(|| ApiError::Internal("an upserted row is not readable".to_owned()))?;
            let new = if postgres {
                inserted.contains(id)
            } else {
                !existing.contains(&key_of(&prepared[i].1))
            };
            let op = if new { Op::Insert } else { Op::Update };
            if let Some(write) = change(table, op, &row) {
                self.outbox.record(write);
            }
            out.push(row);
        }
        Ok(out)
    }

    /// The keys among `prepared` that rows already have (to tell inserts from updates).
    async fn existing_keys(
        &self,
        table: &Table,
        key: &[usize],
        prepared: &[(Uuid, Assignments)],
    ) -> Result<std::collections::HashSet<String>> {
        let mut select = Query::select();
        select
            .from(table.name)
            .cond_where(self.scope.write_condition(table)?)
            .columns(key.iter().map(|&k| table.columns[k].name));
        for &k in key {
            let values: Vec<Value> = prepared
                .iter()
                .filter_map(|(_, full)| full.iter().find(|(c, _)| *c == k).map(|(_, v)| v.clone()))
                .collect();
            select.and_where(Expr::col(table.columns[k].name).is_in(values));
        }
        let mut keys = std::collections::HashSet::new();
        for result in self.db.query_all(&select).await.map_err(ApiError::from)? {
            let row = read_row(&result, table, key)?;
            let full: Assignments = key
                .iter()
                .filter_map(|&c| row.0[c].clone().map(|v| (c, v)))
                .collect();
            keys.insert(key_text(key, &full));
        }
        Ok(keys)
    }

    /// Changes row `id`, if the scope may write it and (with `expected`) it has not
    /// changed since.
    pub async fn update(
        &self,
        table: &'static Table,
        id: Uuid,
        values: &Assignments,
        expected: Option<DateTime<Utc>>,
    ) -> Result<Row> {
        if !table.spec.is_some_and(|s| s.writes.update) {
            return Err(
                ApiError::Forbidden(format!("{} rows cannot be updated", table.name)).into(),
            );
        }
        let mut problems = Vec::new();
        check_values(
            table,
            &table.update_columns(),
            self.rule,
            None,
            values,
            &mut problems,
        );
        if !problems.is_empty() {
            return rejected(problems);
        }
        let current = self.lock(table, id).await?;
        let Some(current) = current else {
            return rejected(vec![problem(
                None,
                Field::Id,
                InputCode::NotFound,
                "no such row",
            )]);
        };
        if let (Some(expected), Some(updated_at)) = (expected, table.column_index("updated_at"))
            && current.0[updated_at] != Some(Value::from(expected))
        {
            return rejected(vec![problem(
                None,
                Field::Version,
                InputCode::Stale,
                "the row changed since; read it again",
            )]);
        }
        let owner = owner_index(table).and_then(|o| current.uuid(o));
        let parents = self.parents(table, &[values]).await?;
        self.check_references(table, None, values, owner, &parents, &mut problems);
        if !problems.is_empty() {
            return rejected(problems);
        }
        if !values.is_empty() {
            let mut update = Query::update();
            update
                .table(table.name)
                .values(
                    values
                        .iter()
                        .map(|(c, v)| (table.columns[*c].name, Expr::val(v.clone()))),
                )
                .and_where(Expr::col(table.columns[table.id_column()].name).eq(id))
                .cond_where(self.scope.write_condition(table)?);
            self.db
                .execute(&update)
                .await
                .map_err(|e| failure(e, table, None, None))?;
            self.keep_tree(table, &[(None, id, values)]).await?;
        }
        let row = find_by_ids(self.db, self.scope, table, Columns::all(table), &[id])
            .await?
            .remove(&id)
            .ok_or_else(|| ApiError::Internal("an updated row is not readable".to_owned()))?;
        if let Some(write) = change(table, Op::Update, &row) {
            self.outbox.record(write);
        }
        Ok(row)
    }

    /// Refuses writes that made a row of a tree table its own ancestor: from each
    /// changed row (its bulk index, id and values) the parent chain is walked, one
    /// statement per level for all rows, after the write and inside its transaction.
    async fn keep_tree(
        &self,
        table: &Table,
        changed: &[(Option<usize>, Uuid, &Assignments)],
    ) -> Result<()> {
        let Some(parent) = table
            .spec
            .and_then(|s| s.tree)
            .and_then(|c| table.column_index(c))
        else {
            return Ok(());
        };
        // (bulk index, start, ancestor reached, ancestors seen)
        let mut chains: Vec<(Option<usize>, Uuid, Uuid, Vec<Uuid>)> = changed
            .iter()
            .filter(|(_, _, values)| values.iter().any(|(c, _)| *c == parent))
            .map(|&(row, id, _)| (row, id, id, vec![id]))
            .collect();
        while !chains.is_empty() {
            let mut select = Query::select();
            select
                .from(table.name)
                .columns([
                    table.columns[table.id_column()].name,
                    table.columns[parent].name,
                ])
                .and_where(
                    Expr::col(table.columns[table.id_column()].name)
                        .is_in(chains.iter().map(|c| c.2)),
                );
            let parents: HashMap<Uuid, Option<Uuid>> = self
                .db
                .query_all(&select)
                .await
                .map_err(ApiError::from)?
                .iter()
                .map(|r| Ok((r.try_get_by_index(0)?, r.try_get_by_index(1)?)))
                .collect::<std::result::Result<_, DbErr>>()
                .map_err(ApiError::from)?;
            let mut next = Vec::with_capacity(chains.len());
            for (row, start, at, mut seen) in chains {
                match parents.get(&at).copied().flatten() {
                    Some(up) if up == start => {
                        return rejected(vec![problem(
                            row,
                            Field::Column(parent),
                            InputCode::Invalid,
                            "would make the row its own ancestor",
                        )]);
                    }
                    // A loop above the row (written by other means) ends the walk.
                    Some(up) if seen.contains(&up) => {}
                    Some(up) => {
                        seen.push(up);
                        next.push((row, start, up, seen));
                    }
                    None => {}
                }
            }
            chains = next;
        }
        Ok(())
    }

    /// Row `id` if the scope may write it, with its owner and version, locked until the
    /// request ends (PostgreSQL; SQLite's request holds the database's write lock).
    async fn lock(&self, table: &Table, id: Uuid) -> Result<Option<Row>> {
        let mut columns = vec![table.id_column()];
        columns.extend(owner_index(table));
        columns.extend(table.column_index("updated_at"));
        let mut select = Query::select();
        select
            .from(table.name)
            .columns(columns.iter().map(|&c| table.columns[c].name))
            .and_where(Expr::col(table.columns[table.id_column()].name).eq(id))
            .cond_where(self.scope.write_condition(table)?)
            // sea-query leaves the lock out on SQLite, whose writing request already holds
            // the database's write lock.
            .lock(sea_orm::sea_query::LockType::Update);
        let result = self.db.query_one(&select).await.map_err(ApiError::from)?;
        Ok(result.map(|r| read_row(&r, table, &columns)).transpose()?)
    }

    /// Deletes row `id`, if the scope may write it.
    pub async fn delete(&self, table: &'static Table, id: Uuid) -> Result<Uuid> {
        if !table.spec.is_some_and(|s| s.writes.delete) {
            return Err(
                ApiError::Forbidden(format!("{} rows cannot be deleted", table.name)).into(),
            );
        }
        let columns = readable(table);
        let mut delete = Query::delete();
        delete
            .from_table(table.name)
            .and_where(Expr::col(table.columns[table.id_column()].name).eq(id))
            .cond_where(self.scope.write_condition(table)?)
            .returning(returning(table, &columns));
        let result = self
            .db
            .query_one(&delete)
            .await
            .map_err(|e| failure(e, table, None, None))?;
        let Some(result) = result else {
            return rejected(vec![problem(
                None,
                Field::Id,
                InputCode::NotFound,
                "no such row",
            )]);
        };
        let row = read_row(&result, table, &columns)?;
        if let Some(write) = change(table, Op::Delete, &row) {
            self.outbox.record(write);
        }
        Ok(id)
    }
}
