//! From a parsed document to a [`ReadPlan`], or `None` when any part of it is beyond the
//! plan (mutations, `node`, aggregates, directives, fragments on other types, variables of
//! input-object or enum types, a response key selected twice): the executor keeps those.

use std::collections::HashSet;

use async_graphql::Name;
use async_graphql::parser::parse_query;
use async_graphql::parser::types::{
    BaseType, DocumentOperations, ExecutableDocument, Field, OperationType, Selection,
    SelectionSet, Type,
};
use entity::registry::RelationKind;

use super::{
    Arguments, ConnectionItem, ConnectionPlan, EdgeItem, ObjectItem, ObjectPlan, PageItem,
    ReadPlan, Root, Variable,
};
use crate::graphql::model::{FieldKind, GqlTable, model};
use crate::graphql::query::columns_of;

/// The scalar types a planned variable may have: values are taken as they are.
const SCALARS: [&str; 11] = [
    "String", "Int", "Float", "Boolean", "ID", "UUID", "DateTime", "Date", "Decimal", "BigInt",
    "JSON",
];

/// How deeply fragments may nest inside one selection set.
const MAX_FRAGMENT_NESTING: usize = 16;

impl ReadPlan {
    /// Compiles `query` run as `operation`, a document the schema has already accepted.
    pub fn compile(query: &str, operation: Option<&str>) -> Option<Self> {
        let document = parse_query(query).ok()?;
        let operation = match (&document.operations, operation) {
            (DocumentOperations::Single(op), _) => &op.node,
            (DocumentOperations::Multiple(ops), Some(name)) => &ops.get(name)?.node,
            // One named operation, asked for without its name.
            (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
                &ops.values().next()?.node
            }
            (DocumentOperations::Multiple(_), None) => return None,
        };
        if operation.ty != OperationType::Query || !operation.directives.is_empty() {
            return None;
        }
        let variables = operation
            .variable_definitions
            .iter()
            .map(|definition| {
                let definition = &definition.node;
                (definition.directives.is_empty() && scalar_type(&definition.var_type.node)).then(
                    || Variable {
                        name: definition.name.node.clone(),
                        ty: definition.var_type.node.clone(),
                        default: definition.default_value.as_ref().map(|v| v.node.clone()),
                    },
                )
            })
            .collect::<Option<Vec<_>>>()?;
        let roots = fields(&document, &operation.selection_set.node, &["Query"])?
            .into_iter()
            .map(|field| {
                let root = match field.name.node.as_str() {
                    "__typename" => Root::Typename,
                    name => {
                        let gql = model().iter().find(|gql| gql.root_field == name)?;
                        Root::Connection(arguments(field), connection(&document, gql, field)?)
                    }
                };
                Some((field.response_key().node.clone(), root))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            document,
            variables,
            roots,
        })
    }
}

fn scalar_type(ty: &Type) -> bool {
    match &ty.base {
        BaseType::Named(name) => SCALARS.contains(&name.as_str()),
        BaseType::List(item) => scalar_type(item),
    }
}

fn arguments(field: &Field) -> Arguments {
    field
        .arguments
        .iter()
        .map(|(name, value)| (name.node.clone(), value.node.clone()))
        .collect()
}

/// A field with no arguments, or `None`.
fn plain(field: &Field) -> Option<&Field> {
    field.arguments.is_empty().then_some(field)
}

fn connection(
    document: &ExecutableDocument,
    gql: &'static GqlTable,
    field: &Field,
) -> Option<ConnectionPlan> {
    let type_name = format!("{}Connection", gql.type_name);
    let mut items = Vec::new();
    let mut objects = 0;
    for sub in fields(document, &field.selection_set.node, &[&type_name])? {
        let item = match plain(sub)?.name.node.as_str() {
            "__typename" => ConnectionItem::Typename,
            "totalCount" => ConnectionItem::TotalCount,
            "nodes" => {
                objects += 1;
                ConnectionItem::Nodes(object(document, gql, sub)?)
            }
            "edges" => {
                let edge_type = format!("{}Edge", gql.type_name);
                let edge = fields(document, &sub.selection_set.node, &[&edge_type])?
                    .into_iter()
                    .map(|f| {
                        let item = match plain(f)?.name.node.as_str() {
                            "__typename" => EdgeItem::Typename,
                            "cursor" => EdgeItem::Cursor,
                            "node" => {
                                objects += 1;
                                EdgeItem::Node(object(document, gql, f)?)
                            }
                            _ => return None,
                        };
                        Some((f.response_key().node.clone(), item))
                    })
                    .collect::<Option<Vec<_>>>()?;
                ConnectionItem::Edges(edge)
            }
            "pageInfo" => ConnectionItem::PageInfo(page_info(document, sub)?),
            _ => return None,
        };
        items.push((sub.response_key().node.clone(), item));
    }
    if objects > 1 {
        return None;
    }
    Some(ConnectionPlan {
        gql,
        needs_rows: items.iter().any(|(_, item)| {
            matches!(
                item,
                ConnectionItem::Nodes(_) | ConnectionItem::Edges(_) | ConnectionItem::PageInfo(_)
            )
        }),
        total_count: items
            .iter()
            .any(|(_, item)| matches!(item, ConnectionItem::TotalCount)),
        items,
    })
}

fn page_info(document: &ExecutableDocument, field: &Field) -> Option<Vec<(Name, PageItem)>> {
    fields(document, &field.selection_set.node, &["PageInfo"])?
        .into_iter()
        .map(|f| {
            let item = match plain(f)?.name.node.as_str() {
                "__typename" => PageItem::Typename,
                "hasNextPage" => PageItem::HasNextPage,
                "hasPreviousPage" => PageItem::HasPreviousPage,
                "startCursor" => PageItem::StartCursor,
                "endCursor" => PageItem::EndCursor,
                _ => return None,
            };
            Some((f.response_key().node.clone(), item))
        })
        .collect()
}

fn object(
    document: &ExecutableDocument,
    gql: &'static GqlTable,
    field: &Field,
) -> Option<ObjectPlan> {
    let selected = fields(
        document,
        &field.selection_set.node,
        &[&gql.type_name, "Node"],
    )?;
    let table = gql.table();
    let items = selected
        .iter()
        .map(|f| {
            let name = f.name.node.as_str();
            let item = match (name, gql.fields.get(name)) {
                ("__typename", _) => ObjectItem::Typename,
                (_, Some(FieldKind::GlobalId)) => ObjectItem::Id,
                // A masked column's full reads are audited by its resolver.
                (_, Some(FieldKind::Column(column))) if table.columns[*column].mask.is_some() => {
                    return None;
                }
                (_, Some(FieldKind::Column(column))) => ObjectItem::Column(*column),
                (_, Some(FieldKind::Relation(relation))) => {
                    let rel = &table.relations[*relation];
                    let other = &model()[rel.other];
                    match rel.kind {
                        RelationKind::HasMany => ObjectItem::Children(
                            *relation,
                            arguments(f),
                            connection(document, other, f)?,
                        ),
                        _ => ObjectItem::Parent(*relation, object(document, other, plain(f)?)?),
                    }
                }
                (_, None) => return None,
            };
            if !matches!(item, ObjectItem::Children(..)) {
                plain(f)?;
            }
            Some((f.response_key().node.clone(), item))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ObjectPlan {
        gql,
        columns: columns_of(gql, selected.iter().map(|f| f.name.node.as_str())),
        items,
    })
}

/// The fields of `set` for an object of one of `types`, fragments spread in; `None` if a
/// directive, a fragment on another type or a response key selected twice is met.
fn fields<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    types: &[&str],
) -> Option<Vec<&'d Field>> {
    let mut out = Vec::new();
    collect(document, set, types, &mut out, 0)?;
    let mut keys = HashSet::new();
    out.iter()
        .all(|field| keys.insert(field.response_key().node.as_str()))
        .then_some(out)
}

fn collect<'d>(
    document: &'d ExecutableDocument,
    set: &'d SelectionSet,
    types: &[&str],
    out: &mut Vec<&'d Field>,
    nesting: usize,
) -> Option<()> {
    if nesting > MAX_FRAGMENT_NESTING {
        return None;
    }
    for selection in &set.items {
        match &selection.node {
            Selection::Field(field) => {
                if !field.node.directives.is_empty() {
                    return None;
                }
                out.push(&field.node);
            }
            Selection::FragmentSpread(spread) => {
                let fragment = &document
                    .fragments
                    .get(&spread.node.fragment_name.node)?
                    .node;
                let on = fragment.type_condition.node.on.node.as_str();
                if !spread.node.directives.is_empty()
                    || !fragment.directives.is_empty()
                    || !types.contains(&on)
                {
                    return None;
                }
                collect(
                    document,
                    &fragment.selection_set.node,
                    types,
                    out,
                    nesting + 1,
                )?;
            }
            Selection::InlineFragment(inline) => {
                let inline = &inline.node;
                let on = inline
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str());
                if !inline.directives.is_empty() || on.is_some_and(|on| !types.contains(&on)) {
                    return None;
                }
                collect(
                    document,
                    &inline.selection_set.node,
                    types,
                    out,
                    nesting + 1,
                )?;
            }
        }
    }
    Some(())
}
