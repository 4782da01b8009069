//! The schema's types, generated for every table from the table model: the row object, its
//! connection and edge, filter and order inputs, and aggregate and group types.

use std::sync::Arc;

use async_graphql::Value as GqlValue;
use async_graphql::dynamic::{
    Enum, Field, FieldFuture, FieldValue, InputObject, InputValue, Interface, InterfaceField,
    Object, ResolverContext, SchemaBuilder, TypeRef,
};
use entity::registry::RelationKind;

use super::docs;
use super::model::{GqlTable, model};
use super::names::screaming;
use super::query::{MAX_PAGE, encode_cursor};
use super::resolve::{
    AggregateValue, ConnectionValue, EdgeValue, MeasureSet, aggregates, masked_column, relation,
    root_connection, row_of, run, total_count,
};
use super::scalars::{to_graphql, type_of};
use crate::error::ApiError;
use crate::store::Measure;
use crate::tables::ValueKind;

/// A field whose value is computed synchronously from the parent.
pub(super) fn sync_field(
    name: impl Into<String>,
    ty: impl Into<TypeRef>,
    get: impl for<'a> Fn(&'a FieldValue<'a>) -> async_graphql::Result<Option<FieldValue<'a>>>
    + Send
    + Sync
    + 'static,
) -> Field {
    Field::new(name, ty, move |ctx| match get(ctx.parent_value) {
        Ok(value) => FieldFuture::Value(value),
        Err(err) => FieldFuture::new(async move { Err::<Option<FieldValue<'_>>, _>(err) }),
    })
}

pub(super) fn parent<'a, T: std::any::Any>(
    value: &'a FieldValue<'a>,
) -> async_graphql::Result<&'a T> {
    value.try_downcast_ref::<T>()
}

/// Registers the shared types: `Node`, `PageInfo`, the enums and the per-scalar filters.
pub fn register_common(mut builder: SchemaBuilder) -> SchemaBuilder {
    builder = builder
        .register(
            Interface::new("Node")
                .description("An object with a global id (`gid://stratix/<Type>/<uuid>`).")
                .field(InterfaceField::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .register(page_info())
        .register(
            Enum::new("SortDirection")
                .description("Ascending or descending.")
                .items(["ASC", "DESC"]),
        )
        .register(
            Enum::new("NullsOrder")
                .description("Where NULLs sort: default LAST for ASC, FIRST for DESC.")
                .items(["FIRST", "LAST"]),
        )
        .register(
            Enum::new("DateTrunc")
                .description("The unit a timestamp is truncated to before grouping (UTC; weeks start on Monday).")
                .items(["HOUR", "DAY", "WEEK", "MONTH", "YEAR"]),
        );
    for kind in [
        ValueKind::Uuid,
        ValueKind::Text,
        ValueKind::Int,
        ValueKind::BigInt,
        ValueKind::Float,
        ValueKind::Decimal,
        ValueKind::Bool,
        ValueKind::DateTime,
        ValueKind::Date,
        ValueKind::Json,
    ] {
        builder = builder.register(scalar_filter(kind));
    }
    builder
}

fn scalar_filter_name(kind: ValueKind) -> String {
    format!("{}Filter", type_of(kind))
}

fn scalar_filter(kind: ValueKind) -> InputObject {
    let ty = type_of(kind);
    let mut input = InputObject::new(scalar_filter_name(kind))
        .description(format!("Conditions on a {ty} field; all given must hold."));
    let one = |name: &str, doc: &str| InputValue::new(name, TypeRef::named(ty)).description(doc);
    let list =
        |name: &str, doc: &str| InputValue::new(name, TypeRef::named_nn_list(ty)).description(doc);
    if kind != ValueKind::Json {
        input = input
            .field(one("eq", "Equal to."))
            .field(one("ne", "Not equal to (NULLs never match)."));
    }
    if !matches!(kind, ValueKind::Json | ValueKind::Bool) {
        input = input
            .field(list("in", "Equal to one of (at most 1000)."))
            .field(list("notIn", "Equal to none of (at most 1000)."));
    }
    if kind.is_ordered() {
        input = input
            .field(one("lt", "Less than."))
            .field(one("lte", "Less than or equal to."))
            .field(one("gt", "Greater than."))
            .field(one("gte", "Greater than or equal to."));
    }
    if kind == ValueKind::Text {
        input = input
            .field(one(
                "like",
                "SQL LIKE, case-sensitive: `%` any run, `_` any character, `\\\\` escapes.",
            ))
            .field(one("ilike", "Like `like`, ignoring case."));
    }
    if kind == ValueKind::Json {
        input = input.field(
            InputValue::new("contains", TypeRef::named("JSON")).description(
                "The JSON object holds these top-level keys with these scalar values.",
            ),
        );
    }
    input.field(
        InputValue::new("isNull", TypeRef::named(TypeRef::BOOLEAN))
            .description("Is (true) or is not (false) null."),
    )
}

fn page_cursor<'a>(
    value: &'a FieldValue<'a>,
    first: bool,
) -> async_graphql::Result<Option<FieldValue<'a>>> {
    let connection = parent::<ConnectionValue>(value)?;
    let row = if first {
        connection.page.rows.first()
    } else {
        connection.page.rows.last()
    };
    Ok(row.map(|row| {
        let gql = &model()[connection.table];
        FieldValue::value(encode_cursor(gql, &connection.ordering, row))
    }))
}

fn page_info() -> Object {
    Object::new("PageInfo")
        .description("Where a page sits in the whole list (Relay).")
        .field(sync_field(
            "hasNextPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |v| {
                Ok(Some(FieldValue::value(
                    parent::<ConnectionValue>(v)?.page.has_next,
                )))
            },
        ))
        .field(sync_field(
            "hasPreviousPage",
            TypeRef::named_nn(TypeRef::BOOLEAN),
            |v| {
                Ok(Some(FieldValue::value(
                    parent::<ConnectionValue>(v)?.page.has_previous,
                )))
            },
        ))
        .field(sync_field(
            "startCursor",
            TypeRef::named(TypeRef::STRING),
            |v| page_cursor(v, true),
        ))
        .field(sync_field(
            "endCursor",
            TypeRef::named(TypeRef::STRING),
            |v| page_cursor(v, false),
        ))
}

/// The arguments every connection field takes.
pub fn connection_field(field: Field, gql: &GqlTable) -> Field {
    field
        .argument(
            InputValue::new("first", TypeRef::named(TypeRef::INT)).description(format!(
                "The first n rows (at most {MAX_PAGE}; 100 when neither first nor last is given)."
            )),
        )
        .argument(
            InputValue::new("after", TypeRef::named(TypeRef::STRING))
                .description("Only rows after this cursor."),
        )
        .argument(
            InputValue::new("last", TypeRef::named(TypeRef::INT))
                .description(format!("The last n rows (at most {MAX_PAGE}).")),
        )
        .argument(
            InputValue::new("before", TypeRef::named(TypeRef::STRING))
                .description("Only rows before this cursor."),
        )
        .argument(
            InputValue::new("filter", TypeRef::named(format!("{}Filter", gql.type_name)))
                .description("Only rows matching this filter."),
        )
        .argument(
            InputValue::new(
                "orderBy",
                TypeRef::named_nn_list(format!("{}OrderBy", gql.type_name)),
            )
            .description("Sort keys, most significant first; ties are broken by id."),
        )
}

/// Registers every type of one table.
pub fn register_table(mut builder: SchemaBuilder, gql: &'static GqlTable) -> SchemaBuilder {
    builder = builder
        .register(row_object(gql))
        .register(connection_object(gql))
        .register(edge_object(gql))
        .register(filter_input(gql))
        .register(column_enum(
            gql,
            "OrderField",
            "A column to sort by.",
            |k| k != ValueKind::Json && k != ValueKind::Bytes,
        ))
        .register(
            InputObject::new(format!("{}OrderBy", gql.type_name))
                .description("One sort key.")
                .field(InputValue::new(
                    "field",
                    TypeRef::named_nn(format!("{}OrderField", gql.type_name)),
                ))
                .field(
                    InputValue::new("direction", TypeRef::named("SortDirection"))
                        .default_value(GqlValue::Enum(async_graphql::Name::new("ASC"))),
                )
                .field(InputValue::new("nulls", TypeRef::named("NullsOrder"))),
        )
        .register(column_enum(
            gql,
            "GroupField",
            "A column to group by.",
            |k| k != ValueKind::Json && k != ValueKind::Bytes,
        ))
        .register(
            InputObject::new(format!("{}GroupBy", gql.type_name))
                .description("One group key.")
                .field(InputValue::new(
                    "field",
                    TypeRef::named_nn(format!("{}GroupField", gql.type_name)),
                ))
                .field(
                    InputValue::new("truncate", TypeRef::named("DateTrunc"))
                        .description("For timestamps: group by this unit."),
                ),
        )
        .register(group_key_object(gql));
    for ty in aggregate_objects(gql) {
        builder = builder.register(ty);
    }
    builder
}

fn columns(gql: &GqlTable) -> impl Iterator<Item = (usize, &crate::tables::Column, &str)> {
    gql.table()
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.secret)
        .map(|(i, c)| (i, c, gql.column_fields[i].as_str()))
}

/// The columns filters, sorts, groups and aggregates may use.
fn queryable(gql: &GqlTable) -> impl Iterator<Item = (usize, &crate::tables::Column, &str)> {
    columns(gql).filter(|(_, c, _)| c.queryable())
}

fn column_type(column: &crate::tables::Column) -> TypeRef {
    if column.nullable {
        TypeRef::named(type_of(column.kind))
    } else {
        TypeRef::named_nn(type_of(column.kind))
    }
}

fn row_object(gql: &'static GqlTable) -> Object {
    let table = gql.table();
    let mut object = Object::new(&gql.type_name).implement("Node");
    if let Some(doc) = docs::table(table.name) {
        object = object.description(doc);
    }
    object = object.field(
        sync_field("id", TypeRef::named_nn(TypeRef::ID), move |v| {
            let row = row_of(v)?;
            let id = row.id(gql.table()).ok_or("row without id")?;
            Ok(Some(FieldValue::value(super::ids::encode(
                &gql.type_name,
                id,
            ))))
        })
        .description("The global id."),
    );
    for (index, column, name) in columns(gql) {
        let mut field = match column.mask {
            Some(mask) => Field::new(name, column_type(column), move |ctx| {
                match masked_column(&ctx, gql, index, mask) {
                    Ok(value) => {
                        FieldFuture::Value(value.map(|v| FieldValue::value(to_graphql(v))))
                    }
                    Err(error) => FieldFuture::new(async move {
                        Err::<Option<FieldValue<'_>>, _>(error.into_graphql())
                    }),
                }
            }),
            None => sync_field(name, column_type(column), move |v| {
                let row = row_of(v)?;
                Ok(row.0[index]
                    .as_ref()
                    .map(|value| FieldValue::value(to_graphql(value))))
            }),
        };
        if let Some(doc) = docs::field(table.name, column.name)
            .map(str::to_owned)
            .or_else(|| column_doc(column.name))
        {
            field = field.description(doc);
        }
        object = object.field(field);
    }
    for (index, rel) in table.relations.iter().enumerate() {
        let other = &model()[rel.other];
        let name = &gql.relation_fields[index];
        let ty = match rel.kind {
            RelationKind::HasMany => TypeRef::named_nn(format!("{}Connection", other.type_name)),
            _ => TypeRef::named(&other.type_name),
        };
        let mut field = Field::new(name, ty, move |ctx: ResolverContext<'_>| {
            FieldFuture::new(run(async move { relation(&ctx, gql, index).await }))
        });
        field = field.description(relation_doc(rel.kind, &other.type_name));
        if rel.kind == RelationKind::HasMany {
            field = connection_field(field, other);
        }
        object = object.field(field);
    }
    object
}

/// A description for a column the entity does not document, from its conventional name.
fn column_doc(column: &str) -> Option<String> {
    Some(match column {
        "id" => "The row's uuid.".to_owned(),
        "created_at" => "When the row was created.".to_owned(),
        "updated_at" => "When the row last changed (kept by the database).".to_owned(),
        _ => match column.strip_suffix("_id") {
            Some(parent) => format!("The uuid of the row's {}.", parent.replace('_', " ")),
            None => return None,
        },
    })
}

fn relation_doc(kind: RelationKind, other: &str) -> String {
    match kind {
        RelationKind::BelongsTo => {
            format!("The {other} this row points at (null if the caller may not see it).")
        }
        RelationKind::HasOne => format!("The {other} that points at this row, if any."),
        RelationKind::HasMany => format!("The {other} rows that point at this row."),
    }
}

fn connection_object(gql: &'static GqlTable) -> Object {
    let name = &gql.type_name;
    let mut object = Object::new(format!("{name}Connection"))
        .description(format!("A page of {name} rows (Relay connection)."))
        .field(sync_field(
            "edges",
            TypeRef::named_nn_list_nn(format!("{name}Edge")),
            |v| {
                let connection = parent::<ConnectionValue>(v)?;
                Ok(Some(FieldValue::list(connection.page.rows.iter().map(
                    |row| {
                        FieldValue::owned_any(EdgeValue {
                            table: connection.table,
                            row: row.clone(),
                            ordering: connection.ordering.clone(),
                        })
                    },
                ))))
            },
        ))
        .field(sync_field("nodes", TypeRef::named_nn_list_nn(name), |v| {
            let connection = parent::<ConnectionValue>(v)?;
            Ok(Some(FieldValue::list(
                connection
                    .page
                    .rows
                    .iter()
                    .map(|row| FieldValue::borrowed_any(&**row)),
            )))
        }))
        .field(sync_field("pageInfo", TypeRef::named_nn("PageInfo"), |v| {
            Ok(Some(FieldValue::borrowed_any(parent::<ConnectionValue>(
                v,
            )?)))
        }))
        .field(
            Field::new("totalCount", TypeRef::named_nn(TypeRef::INT), |ctx| {
                FieldFuture::new(run(async move {
                    let connection =
                        parent::<ConnectionValue>(ctx.parent_value).map_err(internal)?;
                    let n = total_count(&ctx, connection).await?;
                    Ok(Some(FieldValue::value(
                        i64::try_from(n).unwrap_or(i64::MAX),
                    )))
                }))
            })
            .description("How many rows match the filter, across all pages."),
        )
        .field(
            Field::new(
                "aggregate",
                TypeRef::named_nn(format!("{name}Aggregate")),
                |ctx| {
                    FieldFuture::new(run(async move {
                        let connection =
                            parent::<ConnectionValue>(ctx.parent_value).map_err(internal)?;
                        let value = aggregates(&ctx, connection).await?.into_iter().next();
                        Ok(value.map(|v| FieldValue::owned_any(Arc::new(v))))
                    }))
                },
            )
            .description("Aggregates over all rows matching the filter (not just this page)."),
        );
    object = object.field(
        Field::new("groupBy", TypeRef::named_nn_list_nn(format!("{name}Group")), |ctx| {
            FieldFuture::new(run(async move {
                let connection = parent::<ConnectionValue>(ctx.parent_value).map_err(internal)?;
                let groups = aggregates(&ctx, connection).await?;
                Ok(Some(FieldValue::list(groups.into_iter().map(|g| FieldValue::owned_any(Arc::new(g))))))
            }))
        })
        .description("The rows matching the filter, grouped by the given keys (at most 1000 groups), in key order.")
        .argument(InputValue::new("by", TypeRef::named_nn_list_nn(format!("{name}GroupBy")))),
    );
    object
}

fn internal(err: async_graphql::Error) -> ApiError {
    ApiError::Internal(err.message)
}

fn edge_object(gql: &'static GqlTable) -> Object {
    let name = &gql.type_name;
    Object::new(format!("{name}Edge"))
        .description(format!("A {name} in a connection, with its cursor."))
        .field(sync_field(
            "cursor",
            TypeRef::named_nn(TypeRef::STRING),
            |v| {
                let edge = parent::<EdgeValue>(v)?;
                let gql = &model()[edge.table];
                Ok(Some(FieldValue::value(encode_cursor(
                    gql,
                    &edge.ordering,
                    &edge.row,
                ))))
            },
        ))
        .field(sync_field("node", TypeRef::named_nn(name), |v| {
            Ok(Some(FieldValue::borrowed_any(
                &*parent::<EdgeValue>(v)?.row,
            )))
        }))
}

fn filter_input(gql: &GqlTable) -> InputObject {
    let name = format!("{}Filter", gql.type_name);
    let mut input = InputObject::new(&name).description(format!(
        "Conditions on {} rows; all given must hold.",
        gql.type_name
    ));
    for (_, column, field) in queryable(gql) {
        input = input.field(InputValue::new(
            field,
            TypeRef::named(scalar_filter_name(column.kind)),
        ));
    }
    input
        .field(
            InputValue::new("and", TypeRef::named_nn_list(&name)).description("All of these hold."),
        )
        .field(
            InputValue::new("or", TypeRef::named_nn_list(&name))
                .description("At least one of these holds."),
        )
        .field(InputValue::new("not", TypeRef::named(&name)).description("This does not hold."))
}

fn column_enum(gql: &GqlTable, suffix: &str, doc: &str, keep: fn(ValueKind) -> bool) -> Enum {
    Enum::new(format!("{}{suffix}", gql.type_name))
        .description(doc)
        .items(
            queryable(gql)
                .filter(|(_, c, _)| keep(c.kind))
                .map(|(_, c, _)| screaming(c.name)),
        )
}

fn group_key_object(gql: &'static GqlTable) -> Object {
    let mut object = Object::new(format!("{}GroupKey", gql.type_name))
        .description("The key of a group: the grouped fields are set, the others null.");
    for (index, column, name) in
        queryable(gql).filter(|(_, c, _)| c.kind != ValueKind::Json && c.kind != ValueKind::Bytes)
    {
        object = object.field(sync_field(
            name,
            TypeRef::named(type_of(column.kind)),
            move |v| {
                let aggregate = parent::<Arc<AggregateValue>>(v)?;
                let at = aggregate.group.iter().position(|k| k.column == index);
                Ok(at
                    .and_then(|at| aggregate.row.keys.get(at))
                    .map(|value| FieldValue::value(to_graphql(value))))
            },
        ));
    }
    object
}

/// An aggregate sub-object: its field name, type-name suffix, whether it needs numeric
/// columns, and the measure it reads for a column.
type MeasureField = (&'static str, &'static str, bool, fn(usize) -> Measure);

fn aggregate_objects(gql: &'static GqlTable) -> Vec<Object> {
    let name = &gql.type_name;
    let numeric: Vec<_> = queryable(gql)
        .filter(|(_, c, _)| c.kind.is_numeric())
        .collect();
    let ordered: Vec<_> = queryable(gql)
        .filter(|(_, c, _)| c.kind.is_ordered())
        .collect();
    let table = gql.table();
    let measure_object = |suffix: &str,
                          doc: &str,
                          cols: &[(usize, &crate::tables::Column, &str)],
                          make: fn(usize) -> Measure| {
        let mut object = Object::new(format!("{name}{suffix}")).description(doc);
        for &(index, _, field) in cols {
            let ty = type_of(make(index).kind(table));
            object = object.field(sync_field(field, TypeRef::named(ty), move |v| {
                let set = parent::<MeasureSet>(v)?;
                Ok(set
                    .aggregate
                    .value((set.make)(index))
                    .map(|value| FieldValue::value(to_graphql(value))))
            }));
        }
        object
    };
    let mut objects = Vec::new();
    let mut summary = |object_name: String, doc: &str, with_key: bool| {
        let mut object = Object::new(object_name).description(doc).field(sync_field(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            |v| {
                let aggregate = parent::<Arc<AggregateValue>>(v)?;
                let count = match aggregate.value(Measure::Count) {
                    Some(sea_orm::Value::BigInt(Some(n))) => *n,
                    _ => 0,
                };
                Ok(Some(FieldValue::value(count)))
            },
        ));
        if with_key {
            object = object.field(sync_field(
                "key",
                TypeRef::named_nn(format!("{name}GroupKey")),
                |v| {
                    Ok(Some(FieldValue::borrowed_any(
                        parent::<Arc<AggregateValue>>(v)?,
                    )))
                },
            ));
        }
        let sets: [MeasureField; 4] = [
            ("sum", "Sum", true, Measure::Sum),
            ("avg", "Avg", true, Measure::Avg),
            ("min", "Min", false, Measure::Min),
            ("max", "Max", false, Measure::Max),
        ];
        for (field, suffix, numeric_only, make) in sets {
            let has = if numeric_only {
                !numeric.is_empty()
            } else {
                !ordered.is_empty()
            };
            if has {
                object = object.field(sync_field(
                    field,
                    TypeRef::named_nn(format!("{name}{suffix}")),
                    move |v| {
                        let aggregate = parent::<Arc<AggregateValue>>(v)?.clone();
                        Ok(Some(FieldValue::owned_any(MeasureSet { aggregate, make })))
                    },
                ));
            }
        }
        objects.push(object);
    };
    summary(
        format!("{name}Aggregate"),
        "Aggregates over the matching rows.",
        false,
    );
    summary(
        format!("{name}Group"),
        "One group of matching rows and its aggregates.",
        true,
    );
    if !numeric.is_empty() {
        objects.push(measure_object(
            "Sum",
            "Sums of the numeric fields (null when no rows).",
            &numeric,
            Measure::Sum,
        ));
        objects.push(measure_object(
            "Avg",
            "Means of the numeric fields (null when no rows).",
            &numeric,
            Measure::Avg,
        ));
    }
    if !ordered.is_empty() {
        objects.push(measure_object(
            "Min",
            "Least values (null when no rows).",
            &ordered,
            Measure::Min,
        ));
        objects.push(measure_object(
            "Max",
            "Greatest values (null when no rows).",
            &ordered,
            Measure::Max,
        ));
    }
    objects
}

/// The root query field for one table.
pub fn root_field(gql: &'static GqlTable) -> Field {
    let mut field = Field::new(
        &gql.root_field,
        TypeRef::named_nn(format!("{}Connection", gql.type_name)),
        move |ctx: ResolverContext<'_>| {
            FieldFuture::new(run(
                async move { root_connection(&ctx, gql).await.map(Some) },
            ))
        },
    );
    if let Some(doc) = docs::table(gql.table().name) {
        field = field.description(doc);
    }
    connection_field(field, gql)
}
