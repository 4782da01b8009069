//! Moving column values between the database, JSON (cursors, filter inputs) and Rust.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::{DbErr, QueryResult, Value};
use serde_json::Value as Json;
use uuid::Uuid;

use crate::tables::ValueKind;

/// Reads column `index` of `row` as a value of `kind` (SQL NULL becomes a typed null).
pub fn decode(row: &QueryResult, index: usize, kind: ValueKind) -> Result<Value, DbErr> {
    Ok(match kind {
        ValueKind::Uuid => Value::Uuid(row.try_get_by_index::<Option<Uuid>>(index)?),
        ValueKind::Text => Value::String(row.try_get_by_index::<Option<String>>(index)?),
        ValueKind::Int => Value::Int(row.try_get_by_index::<Option<i32>>(index)?),
        ValueKind::BigInt => Value::BigInt(row.try_get_by_index::<Option<i64>>(index)?),
        ValueKind::Float => Value::Double(row.try_get_by_index::<Option<f64>>(index)?),
        ValueKind::Decimal => Value::Decimal(row.try_get_by_index::<Option<Decimal>>(index)?),
        ValueKind::Bool => Value::Bool(row.try_get_by_index::<Option<bool>>(index)?),
        ValueKind::DateTime => {
            Value::ChronoDateTimeUtc(row.try_get_by_index::<Option<DateTime<Utc>>>(index)?)
        }
        ValueKind::Date => Value::ChronoDate(row.try_get_by_index::<Option<NaiveDate>>(index)?),
        ValueKind::Json => Value::Json(row.try_get_by_index::<Option<Json>>(index)?.map(Box::new)),
        ValueKind::Bytes => Value::Bytes(row.try_get_by_index::<Option<Vec<u8>>>(index)?),
    })
}

/// Whether `value` is SQL NULL.
pub fn is_null(value: &Value) -> bool {
    match value {
        Value::Uuid(v) => v.is_none(),
        Value::String(v) => v.is_none(),
        Value::Int(v) => v.is_none(),
        Value::BigInt(v) => v.is_none(),
        Value::Double(v) => v.is_none(),
        Value::Decimal(v) => v.is_none(),
        Value::Bool(v) => v.is_none(),
        Value::ChronoDateTimeUtc(v) => v.is_none(),
        Value::ChronoDate(v) => v.is_none(),
        Value::Json(v) => v.is_none(),
        Value::Bytes(v) => v.is_none(),
        _ => false,
    }
}

/// A typed SQL NULL of `kind`.
pub fn null(kind: ValueKind) -> Value {
    match kind {
        ValueKind::Uuid => Value::Uuid(None),
        ValueKind::Text => Value::String(None),
        ValueKind::Int => Value::Int(None),
        ValueKind::BigInt => Value::BigInt(None),
        ValueKind::Float => Value::Double(None),
        ValueKind::Decimal => Value::Decimal(None),
        ValueKind::Bool => Value::Bool(None),
        ValueKind::DateTime => Value::ChronoDateTimeUtc(None),
        ValueKind::Date => Value::ChronoDate(None),
        ValueKind::Json => Value::Json(None),
        ValueKind::Bytes => Value::Bytes(None),
    }
}

/// A value as JSON: the form cursors carry and GraphQL serves.
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Uuid(Some(v)) => Json::String(v.to_string()),
        Value::String(Some(v)) => Json::String(v.clone()),
        Value::Int(Some(v)) => Json::from(*v),
        Value::BigInt(Some(v)) => Json::String(v.to_string()),
        Value::Double(Some(v)) => Json::from(*v),
        Value::Decimal(Some(v)) => Json::String(v.normalize().to_string()),
        Value::Bool(Some(v)) => Json::Bool(*v),
        Value::ChronoDateTimeUtc(Some(v)) => {
            Json::String(v.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        }
        Value::ChronoDate(Some(v)) => Json::String(v.to_string()),
        Value::Json(Some(v)) => (**v).clone(),
        _ => Json::Null,
    }
}

/// Reads a value of `kind` from JSON (a filter input or a cursor); `None` when it does not
/// fit the kind. JSON null becomes a typed SQL NULL.
pub fn from_json(kind: ValueKind, json: &Json) -> Option<Value> {
    if json.is_null() {
        return Some(null(kind));
    }
    Some(match kind {
        ValueKind::Uuid => Value::from(Uuid::parse_str(json.as_str()?).ok()?),
        ValueKind::Text => Value::from(json.as_str()?.to_owned()),
        ValueKind::Int => Value::from(i32::try_from(json.as_i64()?).ok()?),
        ValueKind::BigInt => Value::from(match json {
            Json::String(s) => s.parse::<i64>().ok()?,
            other => other.as_i64()?,
        }),
        ValueKind::Float => Value::from(json.as_f64()?),
        ValueKind::Decimal => Value::from(match json {
            Json::String(s) => s.parse::<Decimal>().ok()?,
            Json::Number(n) => n.to_string().parse::<Decimal>().ok()?,
            _ => return None,
        }),
        ValueKind::Bool => Value::from(json.as_bool()?),
        ValueKind::DateTime => Value::from(
            DateTime::parse_from_rfc3339(json.as_str()?)
                .ok()?
                .with_timezone(&Utc),
        ),
        ValueKind::Date => Value::from(json.as_str()?.parse::<NaiveDate>().ok()?),
        ValueKind::Json => Value::from(json.clone()),
        ValueKind::Bytes => return None,
    })
}
