//! The scalar types and the conversions between column values and GraphQL values.

use async_graphql::dynamic::{Scalar, SchemaBuilder};
use async_graphql::{Name, Value as GqlValue};
use sea_orm::Value;

use crate::error::ApiError;
use crate::store::values::from_json;
use crate::tables::ValueKind;

/// The GraphQL type name for values of `kind`.
pub fn type_of(kind: ValueKind) -> &'static str {
    match kind {
        ValueKind::Uuid => "UUID",
        ValueKind::Text => "String",
        ValueKind::Int => "Int",
        ValueKind::BigInt => "BigInt",
        ValueKind::Float => "Float",
        ValueKind::Decimal => "Decimal",
        ValueKind::Bool => "Boolean",
        ValueKind::DateTime => "DateTime",
        ValueKind::Date => "Date",
        ValueKind::Json => "JSON",
        ValueKind::Bytes => "String",
    }
}

/// Registers the custom scalars.
pub fn register(builder: SchemaBuilder) -> SchemaBuilder {
    [
        ("UUID", "A uuid in its hyphenated text form."),
        (
            "DateTime",
            "A point in time, RFC 3339 with an offset (UTC as `Z`).",
        ),
        ("Date", "A calendar date, `YYYY-MM-DD`."),
        (
            "Decimal",
            "An exact decimal number, as a string (`\"12.50\"`).",
        ),
        ("BigInt", "A 64-bit integer, as a string."),
        ("JSON", "Any JSON value."),
    ]
    .into_iter()
    .fold(builder, |b, (name, description)| {
        b.register(Scalar::new(name).description(description))
    })
}

/// A column value as GraphQL serves it.
pub fn to_graphql(value: &Value) -> GqlValue {
    match value {
        Value::Uuid(Some(v)) => GqlValue::String(v.to_string()),
        Value::String(Some(v)) => GqlValue::String(v.clone()),
        Value::Int(Some(v)) => GqlValue::from(*v),
        Value::BigInt(Some(v)) => GqlValue::String(v.to_string()),
        Value::Double(Some(v)) => GqlValue::from(*v),
        Value::Decimal(Some(v)) => GqlValue::String(v.normalize().to_string()),
        Value::Bool(Some(v)) => GqlValue::Boolean(*v),
        Value::ChronoDateTimeUtc(Some(v)) => {
            GqlValue::String(v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        Value::ChronoDate(Some(v)) => GqlValue::String(v.to_string()),
        Value::Json(Some(v)) => GqlValue::from_json((**v).clone()).unwrap_or(GqlValue::Null),
        _ => GqlValue::Null,
    }
}

/// Reads a GraphQL input value as a column value of `kind`; `argument` names it in errors.
pub fn from_graphql(argument: &str, kind: ValueKind, value: &GqlValue) -> Result<Value, ApiError> {
    let json = value
        .clone()
        .into_json()
        .map_err(|_| ApiError::bad_input(argument, "not a JSON-representable value"))?;
    from_json(kind, &json).ok_or_else(|| {
        ApiError::bad_input(argument, format!("{json} is not a valid {}", type_of(kind)))
    })
}

/// The field `name` of an input object, if present and not null.
pub fn field<'a>(
    object: &'a async_graphql::indexmap::IndexMap<Name, GqlValue>,
    name: &str,
) -> Option<&'a GqlValue> {
    object.get(name).filter(|v| !matches!(v, GqlValue::Null))
}
