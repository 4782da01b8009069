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

/// A column value as GraphQL serves it: the one rule for how each kind is written
/// (uuids, dates and timestamps as text, `BigInt` and `Decimal` as strings, JSON as is).
pub struct ColumnJson<'a>(pub &'a Value);

impl serde::Serialize for ColumnJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Uuid(Some(v)) => s.collect_str(v),
            Value::String(Some(v)) => s.serialize_str(v),
            Value::Int(Some(v)) => s.serialize_i32(*v),
            Value::BigInt(Some(v)) => s.collect_str(v),
            Value::Double(Some(v)) if v.is_finite() => s.serialize_f64(*v),
            Value::Decimal(Some(v)) => s.collect_str(&v.normalize()),
            Value::Bool(Some(v)) => s.serialize_bool(*v),
            Value::ChronoDateTimeUtc(Some(v)) => {
                s.serialize_str(&v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
            }
            Value::ChronoDate(Some(v)) => s.collect_str(v),
            Value::Json(Some(v)) => v.serialize(s),
            _ => s.serialize_unit(),
        }
    }
}

/// A column value as a GraphQL value (see [`ColumnJson`]).
pub fn to_graphql(value: &Value) -> GqlValue {
    serde_json::to_value(ColumnJson(value))
        .ok()
        .and_then(|json| GqlValue::from_json(json).ok())
        .unwrap_or(GqlValue::Null)
}

/// A GraphQL input value as JSON, refusing text with a NUL character anywhere in it (keys
/// included): PostgreSQL cannot hold one in `text` or `jsonb`, so it could only end in a
/// database error, and SQLite is held to the same rule.
pub fn input_json(argument: &str, value: &GqlValue) -> Result<serde_json::Value, ApiError> {
    fn has_nul(json: &serde_json::Value) -> bool {
        match json {
            serde_json::Value::String(text) => text.contains('\0'),
            serde_json::Value::Array(items) => items.iter().any(has_nul),
            serde_json::Value::Object(fields) => fields
                .iter()
                .any(|(key, value)| key.contains('\0') || has_nul(value)),
            _ => false,
        }
    }
    let json = value
        .clone()
        .into_json()
        .map_err(|_| ApiError::bad_input(argument, "not a JSON-representable value"))?;
    if has_nul(&json) {
        return Err(ApiError::bad_input(
            argument,
            "text may not contain the NUL character (U+0000)",
        ));
    }
    Ok(json)
}

/// Reads a GraphQL input value as a column value of `kind`; `argument` names it in errors.
pub fn from_graphql(argument: &str, kind: ValueKind, value: &GqlValue) -> Result<Value, ApiError> {
    let json = input_json(argument, value)?;
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
