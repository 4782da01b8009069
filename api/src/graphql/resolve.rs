//! Resolvers. Roots and `node` read directly; everything below goes through the batch
//! loader. A root resolver first *prefetches*: it walks the query's selection level by
//! level and loads every relation, count and aggregate for all rows of a level in one
//! batch, so the number of statements depends on the query's shape, never on row counts,
//! and the field resolvers that follow find their data in the loader's cache.

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::dynamic::{FieldValue, ResolverContext};
use async_graphql::{Context, SelectionField};
use entity::registry::RelationKind;
use futures_util::future::{BoxFuture, FutureExt, try_join_all};
use uuid::Uuid;

use super::RequestContext;
use super::loaders::{Batches, Key, Loaded, Spec, SpecRef};
use super::model::{FieldKind, GqlTable, model};
use super::query::{self, Args, args_of};
use crate::domains::distribution::audits::{Action, Audit};
use crate::error::{ApiError, ApiResult};
use crate::store::{
    self, AggregateQuery, AggregateRow, Filter, ListQuery, Measure, Ordering, PageRows, Row,
};
use crate::tables::Mask;

/// A connection's resolved page, with what its `totalCount` and aggregates need.
pub struct ConnectionValue {
    /// The listed table (index into the model).
    pub table: usize,
    /// The rows of this page.
    pub page: Arc<PageRows>,
    /// The order the rows are in (cursors encode it).
    pub ordering: Ordering,
    /// The filter the rows passed.
    pub filter: Option<Filter>,
    /// For a relation: the child's foreign-key column and the parent's id.
    pub parent: Option<(usize, Uuid)>,
}

/// An edge of a connection: a row and the ordering its cursor encodes.
pub struct EdgeValue {
    /// The listed table.
    pub table: usize,
    /// The row.
    pub row: Arc<Row>,
    /// The connection's ordering.
    pub ordering: Ordering,
}

/// One aggregate result (a whole connection's, or one group's).
pub struct AggregateValue {
    /// The group keys, if grouped.
    pub group: Vec<store::GroupKey>,
    /// The measures, in the order of `row.values` (`Count` first).
    pub measures: Vec<Measure>,
    /// The values.
    pub row: AggregateRow,
}

impl AggregateValue {
    /// The value of `measure`, if it was computed.
    pub fn value(&self, measure: Measure) -> Option<&sea_orm::Value> {
        let at = self.measures.iter().position(|m| *m == measure)?;
        self.row.values.get(at)
    }
}

/// Which aggregate function a `sum`/`avg`/`min`/`max` sub-object reads.
pub struct MeasureSet {
    /// The aggregate.
    pub aggregate: Arc<AggregateValue>,
    /// `Measure::Sum` etc., waiting for a column.
    pub make: fn(usize) -> Measure,
}

/// Runs a resolver body that fails with [`ApiError`], giving errors their code.
pub async fn run<T>(body: impl Future<Output = ApiResult<T>>) -> async_graphql::Result<T> {
    body.await.map_err(ApiError::into_graphql)
}

/// The request's database, scope and loader.
pub fn request<'a>(ctx: &Context<'a>) -> ApiResult<&'a RequestContext> {
    ctx.data::<RequestContext>()
        .map_err(|_| ApiError::Internal("request context missing".to_owned()))
}

fn batches<'a>(ctx: &Context<'a>) -> ApiResult<&'a Batches> {
    ctx.data::<Batches>()
        .map_err(|_| ApiError::Internal("batch loader missing".to_owned()))
}

fn loaded(err: Arc<ApiError>) -> ApiError {
    (*err).clone()
}

/// The row behind a row object's parent value.
pub fn row_of<'a>(parent: &'a FieldValue<'a>) -> async_graphql::Result<&'a Row> {
    if let Some(row) = parent.downcast_ref::<Row>() {
        return Ok(row);
    }
    parent.try_downcast_ref::<Arc<Row>>().map(|row| &**row)
}

/// A masked column's value for the parent row, as its scope reads it (the statement chose
/// the full or the redacted value). A full value that differs from its redacted twin
/// (it holds PII) is noted as an audited read.
pub fn masked_column<'a>(
    ctx: &ResolverContext<'a>,
    gql: &GqlTable,
    index: usize,
    mask: Mask,
) -> ApiResult<Option<&'a sea_orm::Value>> {
    let row = row_of(ctx.parent_value).map_err(|e| ApiError::Internal(e.message))?;
    let table = gql.table();
    let value = row.0[index].as_ref();
    let redacted = row.0[mask.redacted].as_ref();
    if value.is_some() && value != redacted {
        let owner = table
            .spec
            .and_then(|spec| table.column_index(spec.owner_column))
            .and_then(|owner| row.uuid(owner));
        if let (Some(record), Some(distributor)) = (row.id(table), owner) {
            let req = request(ctx)?;
            let path = ctx.path_node.map_or_else(String::new, |p| p.to_string());
            req.audits.note(Audit {
                distributor,
                user: req.principal.user_id(),
                action: Action::Read,
                table: table.name,
                record,
                reason: format!("GraphQL read of {path}"),
                at: chrono::Utc::now(),
            });
        }
    }
    Ok(value)
}

/// The spec of relation `relation` of `gql` as selected by `field`.
fn relation_spec(
    gql: &GqlTable,
    relation: usize,
    field: &SelectionField<'_>,
) -> ApiResult<SpecRef> {
    let rel = &gql.table().relations[relation];
    let other = &model()[rel.other];
    Ok(SpecRef::new(match rel.kind {
        RelationKind::BelongsTo => Spec::Rows {
            table: rel.other,
            columns: query::object_columns(other, field.selection_set()),
        },
        RelationKind::HasOne => Spec::Page {
            table: rel.other,
            foreign_key: rel.foreign_key,
            query: has_one_query(other, query::object_columns(other, field.selection_set()))?,
        },
        RelationKind::HasMany => {
            let columns = query::object_columns(other, query::node_selections(field).into_iter());
            Spec::Page {
                table: rel.other,
                foreign_key: rel.foreign_key,
                query: query::list_query(other, &args_of(field)?, columns)?,
            }
        }
    }))
}

/// The query a `has_one` relation reads: the child's first row by id.
pub(super) fn has_one_query(other: &GqlTable, columns: store::Columns) -> ApiResult<ListQuery> {
    let mut args = Args::new();
    args.insert(
        async_graphql::Name::new("first"),
        async_graphql::Value::from(1),
    );
    query::list_query(other, &args, columns)
}

/// The id a relation is looked up by for `row`: the foreign key's value for a parent, the
/// row's own id for children.
pub(super) fn relation_id(gql: &GqlTable, relation: usize, row: &Row) -> Option<Uuid> {
    let table = gql.table();
    let rel = &table.relations[relation];
    match rel.kind {
        RelationKind::BelongsTo => row.uuid(rel.foreign_key),
        _ => row.id(table),
    }
}

/// Loads what `selection` asks of `rows` (objects of `gql`), level by level.
pub fn prefetch<'a>(
    ctx: &'a Context<'a>,
    gql: &'static GqlTable,
    rows: Vec<Arc<Row>>,
    selection: Vec<SelectionField<'a>>,
) -> BoxFuture<'a, ApiResult<()>> {
    async move {
        if rows.is_empty() {
            return Ok(());
        }
        let loader = batches(ctx)?;
        let rows = &rows;
        let tasks = selection.into_iter().filter_map(|field| {
            let Some(FieldKind::Relation(relation)) = gql.fields.get(field.name()).copied() else {
                return None;
            };
            Some(async move {
                let rel = &gql.table().relations[relation];
                let other = &model()[rel.other];
                let spec = relation_spec(gql, relation, &field)?;
                let ids: HashSet<Uuid> = rows
                    .iter()
                    .filter_map(|r| relation_id(gql, relation, r))
                    .collect();
                let skip_rows = rel.kind == RelationKind::HasMany && !query::needs_rows(&field);
                let keys = ids.iter().filter(|_| !skip_rows).map(|&id| Key {
                    spec: spec.clone(),
                    id,
                });
                let values = loader.load_many(keys).await.map_err(loaded)?;
                let mut children = Vec::new();
                for value in values.into_values() {
                    match value {
                        Loaded::Row(Some(row)) => children.push(row),
                        Loaded::Page(page) => children.extend(page.rows.iter().cloned()),
                        _ => {}
                    }
                }
                if rel.kind == RelationKind::HasMany {
                    let filter = match &*spec.spec() {
                        Spec::Page { query, .. } => query.filter.clone(),
                        _ => None,
                    };
                    let parents: Vec<Uuid> = ids.into_iter().collect();
                    let extras =
                        prefetch_extras(ctx, other, rel.foreign_key, &parents, filter, &field);
                    let nested = prefetch(ctx, other, children, query::node_selections(&field));
                    futures_util::try_join!(extras, nested)?;
                } else {
                    prefetch(ctx, other, children, field.selection_set().collect()).await?;
                }
                Ok::<_, ApiError>(())
            })
        });
        try_join_all(tasks).await?;
        Ok(())
    }
    .boxed()
}

/// Loads a nested connection's `totalCount`, `aggregate` and `groupBy` for all parents.
async fn prefetch_extras(
    ctx: &Context<'_>,
    gql: &'static GqlTable,
    foreign_key: usize,
    parents: &[Uuid],
    filter: Option<Filter>,
    connection: &SelectionField<'_>,
) -> ApiResult<()> {
    let loader = batches(ctx)?;
    for field in connection.selection_set() {
        let spec = match field.name() {
            "totalCount" => count_spec(gql, foreign_key, filter.clone()),
            "aggregate" | "groupBy" => aggregate_spec(
                gql,
                foreign_key,
                query::aggregate_query(gql, filter.clone(), &field)?,
            ),
            _ => continue,
        };
        let keys = parents.iter().map(|&id| Key {
            spec: spec.clone(),
            id,
        });
        loader.load_many(keys).await.map_err(loaded)?;
    }
    Ok(())
}

fn count_spec(gql: &GqlTable, foreign_key: usize, filter: Option<Filter>) -> SpecRef {
    SpecRef::new(Spec::Count {
        table: gql.table,
        foreign_key,
        filter,
    })
}

fn aggregate_spec(gql: &GqlTable, foreign_key: usize, query: AggregateQuery) -> SpecRef {
    SpecRef::new(Spec::Aggregate {
        table: gql.table,
        foreign_key,
        query,
    })
}

/// A root connection field: one page of the table, then everything below it prefetched.
pub async fn root_connection<'a>(
    ctx: &ResolverContext<'a>,
    gql: &'static GqlTable,
) -> ApiResult<FieldValue<'a>> {
    let field = ctx.ctx.field();
    let columns = query::object_columns(gql, query::node_selections(&field).into_iter());
    let list = query::list_query(gql, &args_of(&field)?, columns)?;
    let req = request(ctx.ctx)?;
    let page = store::list(&req.db, &req.scope, gql.table(), &list).await?;
    prefetch(
        ctx.ctx,
        gql,
        page.rows.clone(),
        query::node_selections(&field),
    )
    .await?;
    Ok(FieldValue::owned_any(ConnectionValue {
        table: gql.table,
        page: Arc::new(page),
        ordering: list.ordering,
        filter: list.filter,
        parent: None,
    }))
}

/// A relation field of a row object.
pub async fn relation<'a>(
    ctx: &ResolverContext<'a>,
    gql: &'static GqlTable,
    relation: usize,
) -> ApiResult<Option<FieldValue<'a>>> {
    let row = row_of(ctx.parent_value).map_err(|e| ApiError::Internal(e.message))?;
    let Some(id) = relation_id(gql, relation, row) else {
        return Ok(None);
    };
    let field = ctx.ctx.field();
    let spec = relation_spec(gql, relation, &field)?;
    let rel = &gql.table().relations[relation];
    let value = if rel.kind == RelationKind::HasMany && !query::needs_rows(&field) {
        Some(Loaded::Page(Arc::default()))
    } else {
        batches(ctx.ctx)?
            .load_one(Key {
                spec: spec.clone(),
                id,
            })
            .await
            .map_err(loaded)?
    };
    Ok(match (value, rel.kind) {
        (Some(Loaded::Row(Some(row))), _) => Some(FieldValue::owned_any(row)),
        (Some(Loaded::Page(page)), RelationKind::HasOne) => {
            page.rows.first().cloned().map(FieldValue::owned_any)
        }
        (Some(Loaded::Page(page)), _) => {
            let (ordering, filter) = match &*spec.spec() {
                Spec::Page { query, .. } => (query.ordering.clone(), query.filter.clone()),
                _ => return Err(ApiError::Internal("relation spec is not a page".to_owned())),
            };
            Some(FieldValue::owned_any(ConnectionValue {
                table: rel.other,
                page,
                ordering,
                filter,
                parent: Some((rel.foreign_key, id)),
            }))
        }
        _ => None,
    })
}

/// A connection's `totalCount`.
pub async fn total_count(
    ctx: &ResolverContext<'_>,
    connection: &ConnectionValue,
) -> ApiResult<u64> {
    let gql = &model()[connection.table];
    match connection.parent {
        None => {
            let req = request(ctx.ctx)?;
            store::count(&req.db, &req.scope, gql.table(), connection.filter.as_ref()).await
        }
        Some((foreign_key, id)) => {
            let spec = count_spec(gql, foreign_key, connection.filter.clone());
            match batches(ctx.ctx)?
                .load_one(Key { spec, id })
                .await
                .map_err(loaded)?
            {
                Some(Loaded::Count(n)) => Ok(n),
                _ => Ok(0),
            }
        }
    }
}

/// A connection's `aggregate` (one row) or `groupBy` (one row per group).
pub async fn aggregates(
    ctx: &ResolverContext<'_>,
    connection: &ConnectionValue,
) -> ApiResult<Vec<AggregateValue>> {
    let gql = &model()[connection.table];
    let field = ctx.ctx.field();
    let query = query::aggregate_query(gql, connection.filter.clone(), &field)?;
    let rows = match connection.parent {
        None => {
            let req = request(ctx.ctx)?;
            store::aggregate(&req.db, &req.scope, gql.table(), &query, None)
                .await?
                .remove(&None)
                .unwrap_or_default()
        }
        Some((foreign_key, id)) => {
            let spec = aggregate_spec(gql, foreign_key, query.clone());
            match batches(ctx.ctx)?
                .load_one(Key { spec, id })
                .await
                .map_err(loaded)?
            {
                Some(Loaded::Aggregate(rows)) => (*rows).clone(),
                _ => Vec::new(),
            }
        }
    };
    let mut rows = rows;
    if query.group.is_empty() && rows.is_empty() {
        // No rows at all: an ungrouped aggregate still answers (count 0, nulls).
        rows.push(AggregateRow {
            keys: Vec::new(),
            values: query
                .measures
                .iter()
                .map(|m| match m {
                    Measure::Count => sea_orm::Value::BigInt(Some(0)),
                    other => store::values::null(other.kind(gql.table())),
                })
                .collect(),
        });
    }
    Ok(rows
        .into_iter()
        .map(|row| AggregateValue {
            group: query.group.clone(),
            measures: query.measures.clone(),
            row,
        })
        .collect())
}

/// `node(id:)` / `nodes(ids:)`: rows by global id, in the order asked, `null` for ids that
/// do not exist or that the principal may not see. One statement per type asked for.
pub async fn nodes<'a>(
    ctx: &ResolverContext<'a>,
    ids: &[(String, String)],
) -> ApiResult<Vec<Option<FieldValue<'a>>>> {
    let loader = batches(ctx.ctx)?;
    let selection: Vec<SelectionField<'a>> = ctx.ctx.field().selection_set().collect();
    let mut keys = Vec::with_capacity(ids.len());
    for (argument, gid) in ids {
        let (type_name, id) = super::ids::decode(argument, gid)?;
        keys.push(super::model::by_type_name(type_name).map(|gql| {
            let spec = SpecRef::new(Spec::Rows {
                table: gql.table,
                columns: query::object_columns(gql, selection.iter().cloned()),
            });
            (gql, Key { spec, id })
        }));
    }
    let found = loader
        .load_many(keys.iter().flatten().map(|(_, key)| key.clone()))
        .await
        .map_err(loaded)?;
    // Looked up, not taken: an id asked twice is answered twice.
    let mut rows: Vec<Option<(&'static GqlTable, Arc<Row>)>> = keys
        .into_iter()
        .map(|entry| {
            let (gql, key) = entry?;
            match found.get(&key)? {
                Loaded::Row(Some(row)) => Some((gql, row.clone())),
                _ => None,
            }
        })
        .collect();
    let mut by_type: std::collections::HashMap<usize, Vec<Arc<Row>>> =
        std::collections::HashMap::new();
    for (gql, row) in rows.iter().flatten() {
        by_type.entry(gql.table).or_default().push(row.clone());
    }
    let prefetches = by_type
        .into_iter()
        .map(|(table, rows)| prefetch(ctx.ctx, &model()[table], rows, selection.clone()));
    try_join_all(prefetches).await?;
    Ok(rows
        .iter_mut()
        .map(|entry| {
            entry
                .take()
                .map(|(gql, row)| FieldValue::owned_any(row).with_type(gql.type_name.clone()))
        })
        .collect())
}
