//! Turning GraphQL arguments and selections into store queries: pages, cursors, filters,
//! orderings, aggregates. Every bad value becomes `BAD_USER_INPUT` naming the argument.

use async_graphql::indexmap::IndexMap;
use async_graphql::{Name, SelectionField, Value as GqlValue};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::Value;

use super::model::{FieldKind, GqlTable};
use super::scalars::{field, from_graphql, input_json};
use crate::error::{ApiError, ApiResult};
use crate::store::values::{from_json, to_json};
use crate::store::{
    AggregateQuery, Columns, Filter, GroupKey, ListQuery, Measure, Op, OrderTerm, Ordering, Page,
    Row, Truncate,
};
use crate::tables::ValueKind;

/// The most rows one page may hold (`first` / `last`).
pub const MAX_PAGE: u64 = 250;
/// The page size when neither `first` nor `last` is given.
pub const DEFAULT_PAGE: u64 = 100;
/// The most values an `in` / `notIn` list may hold.
pub const MAX_LIST: usize = 1000;
/// How deeply `and` / `or` / `not` may nest.
pub const MAX_FILTER_DEPTH: usize = 8;

/// Field arguments, resolved (variables substituted).
pub type Args = IndexMap<Name, GqlValue>;

/// A selected field's arguments as a map.
pub fn args_of(field: &SelectionField<'_>) -> ApiResult<Args> {
    field
        .arguments()
        .map(|args| args.into_iter().collect())
        .map_err(|e| ApiError::bad_input(field.name(), e.message))
}

fn int_arg(args: &Args, name: &str) -> ApiResult<Option<u64>> {
    match field(args, name) {
        None => Ok(None),
        Some(GqlValue::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_PAGE => Ok(Some(v)),
            _ => Err(ApiError::bad_input(
                name,
                format!("must be between 0 and {MAX_PAGE}"),
            )),
        },
        Some(_) => Err(ApiError::bad_input(name, "must be an integer")),
    }
}

fn string_arg<'a>(args: &'a Args, name: &str) -> ApiResult<Option<&'a str>> {
    match field(args, name) {
        None => Ok(None),
        Some(GqlValue::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_input(name, "must be a string")),
    }
}

/// The enum item in field `name` of an input object: an enum literal in the document, a
/// string when it came in a variable (the schema has checked it is one of the items).
fn enum_value<'a>(object: &'a Args, name: &str) -> Option<&'a str> {
    match field(object, name)? {
        GqlValue::Enum(item) => Some(item.as_str()),
        GqlValue::String(item) => Some(item),
        _ => None,
    }
}

/// The list query a connection field's arguments and selection ask for.
pub fn list_query(gql: &GqlTable, args: &Args, columns: Columns) -> ApiResult<ListQuery> {
    let first = int_arg(args, "first")?;
    let last = int_arg(args, "last")?;
    if first.is_some() && last.is_some() {
        return Err(ApiError::bad_input(
            "last",
            "give either first or last, not both",
        ));
    }
    let ordering = ordering(gql, args)?;
    let cursor = |name: &str| -> ApiResult<Option<Vec<Value>>> {
        string_arg(args, name)?
            .map(|c| decode_cursor(name, gql, &ordering, c))
            .transpose()
    };
    let page = Page {
        limit: first.or(last).unwrap_or(DEFAULT_PAGE),
        backward: last.is_some(),
        after: cursor("after")?,
        before: cursor("before")?,
    };
    Ok(ListQuery {
        columns,
        filter: filter_arg(gql, args)?,
        ordering,
        page,
    })
}

/// The `filter` argument, if given.
pub fn filter_arg(gql: &GqlTable, args: &Args) -> ApiResult<Option<Filter>> {
    field(args, "filter")
        .map(|f| parse_filter(gql, f, "filter", 0))
        .transpose()
}

fn parse_filter(gql: &GqlTable, value: &GqlValue, path: &str, depth: usize) -> ApiResult<Filter> {
    if depth > MAX_FILTER_DEPTH {
        return Err(ApiError::bad_input(
            path,
            format!("nests deeper than {MAX_FILTER_DEPTH}"),
        ));
    }
    let GqlValue::Object(object) = value else {
        return Err(ApiError::bad_input(path, "must be an object"));
    };
    let mut all = Vec::new();
    for (name, value) in object {
        if matches!(value, GqlValue::Null) {
            continue;
        }
        let here = format!("{path}.{name}");
        match name.as_str() {
            "and" | "or" => {
                let GqlValue::List(items) = value else {
                    return Err(ApiError::bad_input(here, "must be a list"));
                };
                let parts = items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_filter(gql, item, &format!("{here}[{i}]"), depth + 1))
                    .collect::<ApiResult<Vec<_>>>()?;
                all.push(if name.as_str() == "and" {
                    Filter::All(parts)
                } else {
                    Filter::Any(parts)
                });
            }
            "not" => all.push(Filter::Not(Box::new(parse_filter(
                gql,
                value,
                &here,
                depth + 1,
            )?))),
            column => {
                let index = gql
                    .column(column)
                    .filter(|&i| gql.table().columns[i].queryable())
                    .ok_or_else(|| ApiError::bad_input(&here, "is not a filterable field"))?;
                let GqlValue::Object(ops) = value else {
                    return Err(ApiError::bad_input(here, "must be an object"));
                };
                for (op, operand) in ops {
                    if matches!(operand, GqlValue::Null) {
                        continue;
                    }
                    let op_path = format!("{here}.{op}");
                    let kind = gql.table().columns[index].kind;
                    all.push(Filter::Column(
                        index,
                        parse_op(kind, op, operand, &op_path)?,
                    ));
                }
            }
        }
    }
    Ok(Filter::All(all))
}

fn parse_op(kind: ValueKind, op: &str, operand: &GqlValue, path: &str) -> ApiResult<Op> {
    let one = || from_graphql(path, kind, operand);
    let many = || -> ApiResult<Vec<Value>> {
        let GqlValue::List(items) = operand else {
            return Err(ApiError::bad_input(path, "must be a list"));
        };
        if items.len() > MAX_LIST {
            return Err(ApiError::bad_input(
                path,
                format!("holds more than {MAX_LIST} values"),
            ));
        }
        items.iter().map(|v| from_graphql(path, kind, v)).collect()
    };
    let text = || match input_json(path, operand)? {
        serde_json::Value::String(s) => Ok(s),
        _ => Err(ApiError::bad_input(path, "must be a string")),
    };
    Ok(match op {
        "eq" => Op::Eq(one()?),
        "ne" => Op::Ne(one()?),
        "in" => Op::In(many()?),
        "notIn" => Op::NotIn(many()?),
        "lt" => Op::Lt(one()?),
        "lte" => Op::Lte(one()?),
        "gt" => Op::Gt(one()?),
        "gte" => Op::Gte(one()?),
        "isNull" => match operand {
            GqlValue::Boolean(b) => Op::IsNull(*b),
            _ => return Err(ApiError::bad_input(path, "must be a boolean")),
        },
        "like" => Op::Like(text()?),
        "ilike" => Op::ILike(text()?),
        "contains" => match input_json(path, operand)? {
            serde_json::Value::Object(map)
                if map
                    .values()
                    .all(|v| v.is_string() || v.is_number() || v.is_boolean()) =>
            {
                Op::Contains(map.into_iter().collect())
            }
            _ => {
                return Err(ApiError::bad_input(
                    path,
                    "must be an object of top-level keys with string, number or boolean values",
                ));
            }
        },
        other => {
            return Err(ApiError::bad_input(
                path,
                format!("unknown operator {other}"),
            ));
        }
    })
}

fn ordering(gql: &GqlTable, args: &Args) -> ApiResult<Ordering> {
    let table = gql.table();
    let mut terms = Vec::new();
    let items = match field(args, "orderBy") {
        None => Vec::new(),
        Some(GqlValue::List(items)) => items.clone(),
        Some(single @ GqlValue::Object(_)) => vec![single.clone()],
        Some(_) => return Err(ApiError::bad_input("orderBy", "must be a list")),
    };
    for (i, item) in items.iter().enumerate() {
        let path = format!("orderBy[{i}]");
        let GqlValue::Object(term) = item else {
            return Err(ApiError::bad_input(path, "must be an object"));
        };
        let column = match enum_value(term, "field") {
            Some(name) => table
                .columns
                .iter()
                .position(|c| c.queryable() && c.name.eq_ignore_ascii_case(name))
                .filter(|&c| {
                    table.columns[c].kind.is_ordered() || table.columns[c].kind == ValueKind::Bool
                }),
            _ => None,
        }
        .ok_or_else(|| ApiError::bad_input(format!("{path}.field"), "is not an orderable field"))?;
        let descending = enum_value(term, "direction") == Some("DESC");
        let nulls_first = match enum_value(term, "nulls") {
            Some(n) => n == "FIRST",
            _ => descending,
        };
        terms.push(OrderTerm {
            column,
            descending,
            nulls_first,
        });
    }
    Ok(Ordering::new(table, terms))
}

fn signature(gql: &GqlTable, ordering: &Ordering) -> String {
    ordering
        .terms()
        .iter()
        .map(|t| {
            format!(
                "{}{}{}",
                gql.table().columns[t.column].name,
                if t.descending { "-" } else { "+" },
                if t.nulls_first { "f" } else { "l" }
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The opaque cursor of `row` under `ordering`: its sort key, tagged with the ordering.
pub fn encode_cursor(gql: &GqlTable, ordering: &Ordering, row: &Row) -> String {
    let mut parts = vec![serde_json::Value::String(signature(gql, ordering))];
    parts.extend(ordering.key_of(&row.0).iter().map(to_json));
    URL_SAFE_NO_PAD.encode(serde_json::Value::Array(parts).to_string())
}

fn decode_cursor(
    argument: &str,
    gql: &GqlTable,
    ordering: &Ordering,
    cursor: &str,
) -> ApiResult<Vec<Value>> {
    let invalid = || ApiError::bad_input(argument, "is not a valid cursor");
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let parts: Vec<serde_json::Value> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let (tag, values) = parts.split_first().ok_or_else(invalid)?;
    if tag.as_str() != Some(signature(gql, ordering).as_str()) {
        return Err(ApiError::bad_input(
            argument,
            "the cursor was made for another orderBy",
        ));
    }
    if values.len() != ordering.terms().len() {
        return Err(invalid());
    }
    ordering
        .terms()
        .iter()
        .zip(values)
        .map(|(term, json)| {
            from_json(gql.table().columns[term.column].kind, json).ok_or_else(invalid)
        })
        .collect()
}

/// The columns an object selection needs: selected columns, foreign keys of selected
/// parents, and always `id`.
pub fn object_columns<'a>(
    gql: &GqlTable,
    selection: impl Iterator<Item = SelectionField<'a>>,
) -> Columns {
    columns_of(gql, selection.map(|field| field.name()))
}

/// [`object_columns`] from the selected field names.
pub fn columns_of<'a>(gql: &GqlTable, names: impl Iterator<Item = &'a str>) -> Columns {
    let table = gql.table();
    let mut columns = Columns::default().with(table.id_column());
    for name in names {
        match gql.fields.get(name) {
            // A masked column's resolver compares it with its twin, for the audit.
            Some(FieldKind::Column(i)) => match (table.columns[*i].mask, table.spec) {
                (Some(mask), Some(spec)) => {
                    columns = columns.with(*i).with(mask.redacted);
                    if let Some(owner) = table.column_index(spec.owner_column) {
                        columns = columns.with(owner);
                    }
                }
                _ => columns = columns.with(*i),
            },
            Some(FieldKind::Relation(r)) => {
                let relation = &table.relations[*r];
                if relation.kind == entity::registry::RelationKind::BelongsTo {
                    columns = columns.with(relation.foreign_key);
                }
            }
            _ => {}
        }
    }
    columns
}

/// Whether a connection selection reads its rows at all (`totalCount` and aggregates
/// alone do not).
pub fn needs_rows(connection: &SelectionField<'_>) -> bool {
    connection
        .selection_set()
        .any(|f| matches!(f.name(), "nodes" | "edges" | "pageInfo"))
}

/// The object selections inside a connection selection (`nodes { .. }`, `edges { node { .. } }`).
pub fn node_selections<'a>(connection: &SelectionField<'a>) -> Vec<SelectionField<'a>> {
    let mut out = Vec::new();
    for field in connection.selection_set() {
        match field.name() {
            "nodes" => out.extend(field.selection_set()),
            "edges" => {
                for edge in field.selection_set().filter(|f| f.name() == "node") {
                    out.extend(edge.selection_set());
                }
            }
            _ => {}
        }
    }
    out
}

/// The measures an aggregate-shaped selection (`count`, `sum { .. }`, ...) asks for;
/// `count` always comes first.
pub fn measures<'a>(
    gql: &GqlTable,
    selection: impl Iterator<Item = SelectionField<'a>>,
) -> Vec<Measure> {
    let mut measures = vec![Measure::Count];
    for field in selection {
        let make: fn(usize) -> Measure = match field.name() {
            "sum" => Measure::Sum,
            "avg" => Measure::Avg,
            "min" => Measure::Min,
            "max" => Measure::Max,
            _ => continue,
        };
        for sub in field.selection_set() {
            if let Some(column) = gql.column(sub.name()) {
                let measure = make(column);
                if !measures.contains(&measure) {
                    measures.push(measure);
                }
            }
        }
    }
    measures
}

/// The group keys of a `groupBy(by: [...])` argument.
pub fn group_keys(gql: &GqlTable, args: &Args) -> ApiResult<Vec<GroupKey>> {
    let Some(GqlValue::List(items)) = field(args, "by") else {
        return Err(ApiError::bad_input("by", "must be a list of group keys"));
    };
    let table = gql.table();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("by[{i}]");
            let GqlValue::Object(key) = item else {
                return Err(ApiError::bad_input(path, "must be an object"));
            };
            let column = match enum_value(key, "field") {
                Some(name) => table.columns.iter().position(|c| {
                    c.queryable() && c.kind != ValueKind::Json && c.name.eq_ignore_ascii_case(name)
                }),
                _ => None,
            }
            .ok_or_else(|| {
                ApiError::bad_input(format!("{path}.field"), "is not a groupable field")
            })?;
            let unit = |unit| match unit {
                "HOUR" => Ok(Truncate::Hour),
                "DAY" => Ok(Truncate::Day),
                "WEEK" => Ok(Truncate::Week),
                "MONTH" => Ok(Truncate::Month),
                "YEAR" => Ok(Truncate::Year),
                _ => Err(ApiError::bad_input(
                    format!("{path}.truncate"),
                    "unknown unit",
                )),
            };
            let truncate = match (field(key, "truncate"), enum_value(key, "truncate")) {
                (None, _) => None,
                (Some(_), Some(name)) => Some(unit(name)?),
                (Some(_), None) => {
                    return Err(ApiError::bad_input(
                        format!("{path}.truncate"),
                        "must be an enum",
                    ));
                }
            };
            if truncate.is_some() && table.columns[column].kind != ValueKind::DateTime {
                return Err(ApiError::bad_input(
                    format!("{path}.truncate"),
                    "applies to timestamps only",
                ));
            }
            Ok(GroupKey { column, truncate })
        })
        .collect()
}

/// The aggregate query for an `aggregate` or `groupBy` field of a connection.
pub fn aggregate_query(
    gql: &GqlTable,
    filter: Option<Filter>,
    field: &SelectionField<'_>,
) -> ApiResult<AggregateQuery> {
    let group = if field.name() == "groupBy" {
        group_keys(gql, &args_of(field)?)?
    } else {
        Vec::new()
    };
    Ok(AggregateQuery {
        filter,
        group,
        measures: measures(gql, field.selection_set()),
    })
}
