//! Running a [`ReadPlan`]: bind the variables and arguments (everything that can refuse
//! the request, before any SQL), load level by level, write the JSON.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{BaseType, Type};
use async_graphql::{Name, Variables};
use async_graphql_value::ConstValue;
use entity::registry::RelationKind;
use futures_util::future::{BoxFuture, FutureExt};
use uuid::Uuid;

use super::{
    Arguments, ConnectionItem, ConnectionPlan, EdgeItem, ObjectItem, ObjectPlan, PageItem,
    ReadPlan, Root, Variable,
};
use crate::db::RequestDb;
use crate::error::ApiResult;
use crate::graphql::ids;
use crate::graphql::limits::{Limits, Shape};
use crate::graphql::loaders::{self, Loaded, Spec};
use crate::graphql::query::{Args, encode_cursor, list_query};
use crate::graphql::resolve::{has_one_query, relation_id};
use crate::graphql::scalars::ColumnJson;
use crate::store::{self, Columns, ListQuery, PageRows, Row, Scope};

/// A plan's answer: the `data` object as JSON.
pub struct Answer {
    /// The serialised `data`.
    pub data: Vec<u8>,
}

/// Variable values after the plan's checks.
type Bindings = IndexMap<Name, ConstValue>;

impl ReadPlan {
    /// Answers the request, or `Ok(None)` to hand it to the executor (nothing has run).
    pub async fn run(
        &self,
        db: &RequestDb,
        scope: &Scope,
        variables: &Variables,
        limits: &Limits,
    ) -> ApiResult<Option<Answer>> {
        let Some(bindings) = bind_variables(&self.variables, variables) else {
            return Ok(None);
        };
        let shape = Shape::of(&self.document, variables);
        if limits.check(&shape).is_err() {
            return Ok(None);
        }
        let Ok(roots) = self
            .roots
            .iter()
            .map(|(key, root)| {
                Ok(match root {
                    Root::Typename => (key, None),
                    Root::Connection(args, plan) => {
                        (key, Some(bind_connection(plan, args, &bindings)?))
                    }
                })
            })
            .collect::<ApiResult<Vec<_>>>()
        else {
            return Ok(None);
        };
        let mut out = Json(Vec::with_capacity(16 << 10));
        out.open();
        for (i, (key, root)) in roots.iter().enumerate() {
            out.key(i, key);
            let Some(connection) = root else {
                out.string("Query");
                continue;
            };
            let table = connection.plan.gql.table();
            let page = store::list(db, scope, table, &connection.query).await?;
            let count = match connection.plan.total_count {
                true => store::count(db, scope, table, connection.query.filter.as_ref()).await?,
                false => 0,
            };
            let fetched = match &connection.object {
                Some(object) => fetch(db, scope, object, page.rows.clone()).await?,
                None => Fetched::default(),
            };
            out.connection(connection, &page, count, &fetched);
        }
        out.close();
        Ok(Some(Answer { data: out.0 }))
    }
}

/// The variables as the operation declares them, or `None` where the executor would
/// coerce or refuse a value.
fn bind_variables(declared: &[Variable], given: &Variables) -> Option<Bindings> {
    declared
        .iter()
        .map(|variable| {
            let value = given.get(&variable.name).or(variable.default.as_ref());
            Some((variable.name.clone(), accept(&variable.ty, value)?))
        })
        .collect()
}

fn accept(ty: &Type, value: Option<&ConstValue>) -> Option<ConstValue> {
    let value = match value {
        None | Some(ConstValue::Null) => return ty.nullable.then_some(ConstValue::Null),
        Some(value) => value,
    };
    match (&ty.base, value) {
        (BaseType::List(item), ConstValue::List(items)) => items
            .iter()
            .map(|v| accept(item.as_ref(), Some(v)))
            .collect::<Option<Vec<_>>>()
            .map(ConstValue::List),
        (BaseType::Named(name), value) => {
            let fits = match (name.as_str(), value) {
                ("Int", ConstValue::Number(n)) => {
                    n.as_i64().is_some_and(|n| i32::try_from(n).is_ok())
                }
                ("Float", ConstValue::Number(_)) | ("Boolean", ConstValue::Boolean(_)) => true,
                ("Int" | "Float" | "Boolean", _) => false,
                ("JSON", _) => true,
                (_, ConstValue::String(_)) => true,
                _ => false,
            };
            fits.then(|| value.clone())
        }
        _ => None,
    }
}

fn resolve(arguments: &Arguments, bindings: &Bindings) -> Args {
    arguments
        .iter()
        .map(|(name, value)| {
            let value = value.clone().into_const_with(|variable| {
                Ok::<_, Infallible>(bindings.get(&variable).cloned().unwrap_or_default())
            });
            (name.clone(), value.unwrap_or_default())
        })
        .collect()
}

/// A connection with its arguments read.
struct BoundConnection<'p> {
    plan: &'p ConnectionPlan,
    query: ListQuery,
    object: Option<BoundObject<'p>>,
}

/// An object selection with every relation's spec built.
struct BoundObject<'p> {
    plan: &'p ObjectPlan,
    /// One per relation item, in item order.
    relations: Vec<BoundRelation<'p>>,
}

struct BoundRelation<'p> {
    relation: usize,
    /// What to load per parent; `None` when the rows are not read.
    spec: Option<Spec>,
    child: BoundChild<'p>,
}

enum BoundChild<'p> {
    Object(BoundObject<'p>),
    Connection(BoundConnection<'p>),
}

fn bind_connection<'p>(
    plan: &'p ConnectionPlan,
    arguments: &Arguments,
    bindings: &Bindings,
) -> ApiResult<BoundConnection<'p>> {
    let object = plan.object();
    let columns = object.map_or_else(
        || Columns::default().with(plan.gql.table().id_column()),
        |o| o.columns,
    );
    Ok(BoundConnection {
        plan,
        query: list_query(plan.gql, &resolve(arguments, bindings), columns)?,
        object: object.map(|o| bind_object(o, bindings)).transpose()?,
    })
}

fn bind_object<'p>(plan: &'p ObjectPlan, bindings: &Bindings) -> ApiResult<BoundObject<'p>> {
    let table = plan.gql.table();
    let relations = plan
        .items
        .iter()
        .filter_map(|(_, item)| match item {
            ObjectItem::Parent(relation, object) => Some((|| {
                let rel = &table.relations[*relation];
                let spec = match rel.kind {
                    RelationKind::HasOne => Spec::Page {
                        table: rel.other,
                        foreign_key: rel.foreign_key,
                        query: has_one_query(object.gql, object.columns)?,
                    },
                    _ => Spec::Rows {
                        table: rel.other,
                        columns: object.columns,
                    },
                };
                Ok(BoundRelation {
                    relation: *relation,
                    spec: Some(spec),
                    child: BoundChild::Object(bind_object(object, bindings)?),
                })
            })()),
            ObjectItem::Children(relation, arguments, connection) => Some((|| {
                let rel = &table.relations[*relation];
                let child = bind_connection(connection, arguments, bindings)?;
                Ok(BoundRelation {
                    relation: *relation,
                    spec: connection.needs_rows.then(|| Spec::Page {
                        table: rel.other,
                        foreign_key: rel.foreign_key,
                        query: child.query.clone(),
                    }),
                    child: BoundChild::Connection(child),
                })
            })()),
            _ => None,
        })
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(BoundObject { plan, relations })
}

/// What was loaded below a set of rows, per relation item.
#[derive(Default)]
struct Fetched {
    relations: Vec<FetchedRelation>,
}

struct FetchedRelation {
    /// By parent key (see `relation_id`).
    loaded: HashMap<Uuid, Loaded>,
    /// `totalCount` by parent id.
    counts: HashMap<Uuid, Loaded>,
    child: Fetched,
}

/// Loads every relation `object` selects for `rows`: one statement per relation (and per
/// `totalCount`), then the level below.
fn fetch<'a>(
    db: &'a RequestDb,
    scope: &'a Scope,
    object: &'a BoundObject<'_>,
    rows: Vec<Arc<Row>>,
) -> BoxFuture<'a, ApiResult<Fetched>> {
    async move {
        let gql = object.plan.gql;
        let mut relations = Vec::with_capacity(object.relations.len());
        for bound in &object.relations {
            let rel = &gql.table().relations[bound.relation];
            let ids: Vec<Uuid> = rows
                .iter()
                .filter_map(|row| relation_id(gql, bound.relation, row))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let loaded = match &bound.spec {
                Some(spec) if !ids.is_empty() => loaders::load(db, scope, spec, &ids).await?,
                _ => HashMap::new(),
            };
            let children: Vec<Arc<Row>> = loaded
                .values()
                .flat_map(|value| match value {
                    Loaded::Row(Some(row)) => std::slice::from_ref(row),
                    Loaded::Page(page) => page.rows.as_slice(),
                    _ => &[],
                })
                .cloned()
                .collect();
            let (child, counts) = match &bound.child {
                BoundChild::Object(child) => {
                    (fetch(db, scope, child, children).await?, HashMap::new())
                }
                BoundChild::Connection(connection) => {
                    let child = match &connection.object {
                        Some(child) => fetch(db, scope, child, children).await?,
                        None => Fetched::default(),
                    };
                    let counts = if connection.plan.total_count && !ids.is_empty() {
                        let spec = Spec::Count {
                            table: rel.other,
                            foreign_key: rel.foreign_key,
                            filter: connection.query.filter.clone(),
                        };
                        loaders::load(db, scope, &spec, &ids).await?
                    } else {
                        HashMap::new()
                    };
                    (child, counts)
                }
            };
            relations.push(FetchedRelation {
                loaded,
                counts,
                child,
            });
        }
        Ok(Fetched { relations })
    }
    .boxed()
}

/// The response under construction. Keys are GraphQL names, which need no escaping.
struct Json(Vec<u8>);

impl Json {
    fn open(&mut self) {
        self.0.push(b'{');
    }

    fn close(&mut self) {
        self.0.push(b'}');
    }

    /// Writes the `index`th key of an object.
    fn key(&mut self, index: usize, key: &Name) {
        if index > 0 {
            self.0.push(b',');
        }
        self.0.push(b'"');
        self.0.extend_from_slice(key.as_bytes());
        self.0.extend_from_slice(b"\":");
    }

    fn value(&mut self, value: impl serde::Serialize) {
        // Writing to a Vec cannot fail, and every value here serialises.
        let _ = serde_json::to_writer(&mut self.0, &value);
    }

    fn string(&mut self, value: &str) {
        self.value(value);
    }

    fn list<T>(&mut self, items: &[T], mut write: impl FnMut(&mut Self, &T)) {
        self.0.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            write(self, item);
        }
        self.0.push(b']');
    }

    fn connection(
        &mut self,
        connection: &BoundConnection<'_>,
        page: &PageRows,
        count: u64,
        fetched: &Fetched,
    ) {
        let gql = connection.plan.gql;
        let cursor = |row: &Row| encode_cursor(gql, &connection.query.ordering, row);
        self.open();
        for (i, (key, item)) in connection.plan.items.iter().enumerate() {
            self.key(i, key);
            match item {
                ConnectionItem::Typename => self.string(&format!("{}Connection", gql.type_name)),
                ConnectionItem::TotalCount => self.value(i64::try_from(count).unwrap_or(i64::MAX)),
                ConnectionItem::Nodes(_) => self.list(&page.rows, |out, row| {
                    out.object(connection.object.as_ref(), row, fetched);
                }),
                ConnectionItem::Edges(items) => self.list(&page.rows, |out, row| {
                    out.open();
                    for (i, (key, item)) in items.iter().enumerate() {
                        out.key(i, key);
                        match item {
                            EdgeItem::Typename => out.string(&format!("{}Edge", gql.type_name)),
                            EdgeItem::Cursor => out.string(&cursor(row)),
                            EdgeItem::Node(_) => {
                                out.object(connection.object.as_ref(), row, fetched);
                            }
                        }
                    }
                    out.close();
                }),
                ConnectionItem::PageInfo(items) => {
                    self.open();
                    for (i, (key, item)) in items.iter().enumerate() {
                        self.key(i, key);
                        match item {
                            PageItem::Typename => self.string("PageInfo"),
                            PageItem::HasNextPage => self.value(page.has_next),
                            PageItem::HasPreviousPage => self.value(page.has_previous),
                            PageItem::StartCursor => {
                                self.value(page.rows.first().map(|row| cursor(row)));
                            }
                            PageItem::EndCursor => {
                                self.value(page.rows.last().map(|row| cursor(row)));
                            }
                        }
                    }
                    self.close();
                }
            }
        }
        self.close();
    }

    fn object(&mut self, object: Option<&BoundObject<'_>>, row: &Row, fetched: &Fetched) {
        let Some(object) = object else {
            self.0.extend_from_slice(b"null");
            return;
        };
        let gql = object.plan.gql;
        let mut relations = object.relations.iter().zip(&fetched.relations);
        self.open();
        for (i, (key, item)) in object.plan.items.iter().enumerate() {
            self.key(i, key);
            match item {
                ObjectItem::Typename => self.string(&gql.type_name),
                ObjectItem::Id => match row.id(gql.table()) {
                    Some(id) => self.string(&ids::encode(&gql.type_name, id)),
                    None => self.value(()),
                },
                ObjectItem::Column(column) => match row.0.get(*column).and_then(Option::as_ref) {
                    Some(value) => self.value(ColumnJson(value)),
                    None => self.value(()),
                },
                ObjectItem::Parent(..) | ObjectItem::Children(..) => {
                    let Some((bound, loaded)) = relations.next() else {
                        self.value(());
                        continue;
                    };
                    let id = relation_id(gql, bound.relation, row);
                    let value = id.and_then(|id| loaded.loaded.get(&id));
                    match &bound.child {
                        BoundChild::Object(child) => {
                            let parent = match value {
                                Some(Loaded::Row(Some(parent))) => Some(parent),
                                Some(Loaded::Page(page)) => page.rows.first(),
                                _ => None,
                            };
                            match parent {
                                Some(parent) => self.object(Some(child), parent, &loaded.child),
                                None => self.value(()),
                            }
                        }
                        BoundChild::Connection(connection) => {
                            let empty = PageRows::default();
                            let page = match value {
                                Some(Loaded::Page(page)) => page,
                                _ => &empty,
                            };
                            let count = match id.and_then(|id| loaded.counts.get(&id)) {
                                Some(Loaded::Count(n)) => *n,
                                _ => 0,
                            };
                            self.connection(connection, page, count, &loaded.child);
                        }
                    }
                }
            }
        }
        self.close();
    }
}
