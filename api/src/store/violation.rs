//! Constraint violations, read from either backend's error into one answer: which rule
//! (unique -> `TAKEN`, foreign key -> `NOT_FOUND`, check -> `INVALID`, not null ->
//! `BLANK`, too long -> `TOO_LONG`, row-level security -> `NOT_FOUND`) and which column.
//!
//! PostgreSQL names the columns in the error's detail (`Key (shop_id, handle)=(...)`) or
//! its `column`; SQLite in the message (`UNIQUE constraint failed: products.shop_id,
//! products.handle`). Check constraints are found by name on both (`products_status_check`).

use sea_orm::{DbErr, RuntimeErr, sqlx};

use crate::error::InputCode;
use crate::tables::Table;

/// A constraint the database refused a write with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What kind of rule.
    pub code: InputCode,
    /// The column at fault, when the error names one of `table`'s.
    pub column: Option<usize>,
    /// For clients.
    pub message: String,
}

/// The violation behind `error`, if it is one; `None` for any other failure.
pub fn classify(error: &DbErr, table: &Table) -> Option<Violation> {
    let (DbErr::Query(RuntimeErr::SqlxError(error)) | DbErr::Exec(RuntimeErr::SqlxError(error))) =
        error
    else {
        return None;
    };
    let sqlx::Error::Database(database) = &**error else {
        return None;
    };
    if let Some(pg) = database.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        postgres(pg, table)
    } else {
        sqlite(
            database.code().as_deref().unwrap_or_default(),
            database.message(),
            table,
        )
    }
}

fn postgres(error: &sqlx::postgres::PgDatabaseError, table: &Table) -> Option<Violation> {
    let detail = error.detail().unwrap_or_default();
    let key_columns = || {
        detail
            .strip_prefix("Key (")
            .and_then(|rest| rest.split_once(")="))
            .map(|(columns, _)| columns.split(", ").collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let constraint = error.constraint().unwrap_or_default();
    // PostgreSQL leaves the detail out where the table has row-level security: then the
    // constraint's name says which columns.
    let columns = || match key_columns() {
        named if !named.is_empty() => named,
        _ => named_columns(table, constraint),
    };
    Some(match error.code() {
        "23505" => taken(table, &columns()),
        // A foreign key of another table: rows there still refer to this one.
        "23503" if error.table().is_some_and(|t| t != table.name) => Violation {
            code: InputCode::Invalid,
            column: None,
            message: "other rows still refer to this row".to_owned(),
        },
        "23503" => missing(table, &columns()),
        "23514" => invalid(table, constraint),
        "23502" => blank(table, error.column().unwrap_or_default()),
        "22001" => Violation {
            code: InputCode::TooLong,
            column: None,
            message: "a value is longer than its field allows".to_owned(),
        },
        // Row-level security refused the row: it is not the caller's, which reads as
        // missing.
        "42501" => Violation {
            code: InputCode::NotFound,
            column: owner_column(table),
            message: "no such row".to_owned(),
        },
        "22003" | "22007" | "22008" | "22P02" => Violation {
            code: InputCode::Invalid,
            column: None,
            message: "a value is out of range or malformed".to_owned(),
        },
        _ => return None,
    })
}

fn sqlite(code: &str, message: &str, table: &Table) -> Option<Violation> {
    // SQLite's extended result codes.
    let named = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .map(|rest| {
                rest.split(", ")
                    .map(|qualified| qualified.rsplit('.').next().unwrap_or(qualified))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    Some(match code {
        "2067" | "1555" => taken(table, &named("UNIQUE constraint failed: ")),
        "787" => Violation {
            code: InputCode::NotFound,
            column: None,
            message: "a row referred to does not exist".to_owned(),
        },
        "275" => invalid(
            table,
            message
                .strip_prefix("CHECK constraint failed: ")
                .unwrap_or_default(),
        ),
        // A trigger's `RAISE(ABORT, '<constraint>: ...')`: a rule the migrations keep in
        // a trigger, named like a check constraint.
        "1811" => invalid(table, message.split(':').next().unwrap_or_default()),
        "1299" => blank(
            table,
            named("NOT NULL constraint failed: ")
                .first()
                .copied()
                .unwrap_or_default(),
        ),
        _ => return None,
    })
}

/// The columns a constraint's name spells out, as the migrations name constraints:
/// `products_shop_id_shopify_id_key` (unique), `fk_orders_customer_id_distributor_id`
/// (foreign key).
fn named_columns<'t>(table: &'t Table, constraint: &str) -> Vec<&'t str> {
    let mut rest = constraint.strip_prefix("fk_").unwrap_or(constraint);
    rest = rest
        .strip_prefix(table.name)
        .and_then(|r| r.strip_prefix('_'))
        .unwrap_or(rest);
    if let Some(stripped) = ["_key", "_fkey", "_check"]
        .iter()
        .find_map(|suffix| rest.strip_suffix(suffix))
    {
        rest = stripped;
    }
    let mut found = Vec::new();
    while !rest.is_empty() {
        let next = table
            .columns
            .iter()
            .map(|c| c.name)
            .filter(|c| {
                rest.strip_prefix(c)
                    .is_some_and(|after| after.is_empty() || after.starts_with('_'))
            })
            .max_by_key(|c| c.len());
        let Some(column) = next else {
            break;
        };
        found.push(column);
        rest = rest[column.len()..].trim_start_matches('_');
    }
    found
}

/// The column a client chose among `columns`: the last one that is not the owner key
/// (`(shop_id, handle)` is about the handle).
fn chosen(table: &Table, columns: &[&str]) -> Option<usize> {
    let owner = table.spec.map(|spec| spec.owner_column);
    columns
        .iter()
        .rev()
        .find(|c| Some(**c) != owner)
        .or(columns.last())
        .and_then(|c| table.column_index(c))
}

fn owner_column(table: &Table) -> Option<usize> {
    table.column_index(table.spec?.owner_column)
}

fn taken(table: &Table, columns: &[&str]) -> Violation {
    Violation {
        code: InputCode::Taken,
        column: chosen(table, columns),
        message: "is already taken".to_owned(),
    }
}

fn missing(table: &Table, columns: &[&str]) -> Violation {
    Violation {
        code: InputCode::NotFound,
        column: chosen(table, columns),
        message: "no such row".to_owned(),
    }
}

fn blank(table: &Table, column: &str) -> Violation {
    Violation {
        code: InputCode::Blank,
        column: table.column_index(column),
        message: "can't be blank".to_owned(),
    }
}

/// A check constraint, found by name: `<table>_<column>_check` (or any name that holds
/// one of the table's columns; the longest match wins, so `total_amount` beats `total`).
fn invalid(table: &Table, constraint: &str) -> Violation {
    let column = table
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| constraint.contains(c.name))
        .max_by_key(|(_, c)| c.name.len())
        .map(|(i, _)| i);
    Violation {
        code: InputCode::Invalid,
        column,
        message: "is not an allowed value".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::tables;

    #[test]
    fn sqlite_messages_name_the_client_column() {
        let products = tables().get("products").unwrap();
        let taken = sqlite(
            "2067",
            "UNIQUE constraint failed: products.shop_id, products.shopify_id",
            products,
        )
        .unwrap();
        assert_eq!(taken.code, InputCode::Taken);
        assert_eq!(taken.column, products.column_index("shopify_id"));
        let blank = sqlite(
            "1299",
            "NOT NULL constraint failed: products.title",
            products,
        )
        .unwrap();
        assert_eq!(blank.code, InputCode::Blank);
        assert_eq!(blank.column, products.column_index("title"));
        assert_eq!(sqlite("1", "syntax error", products), None);
    }

    #[test]
    fn constraint_names_spell_their_columns() {
        let products = tables().get("products").unwrap();
        assert_eq!(
            named_columns(products, "products_shop_id_shopify_id_key"),
            ["shop_id", "shopify_id"]
        );
        let cache = tables().get("cache").unwrap();
        assert_eq!(
            named_columns(cache, "cache_shop_id_key_key"),
            ["shop_id", "key"]
        );
        let lines = tables().get("order_products").unwrap();
        assert_eq!(
            named_columns(lines, "fk_order_products_order_id_distributor_id"),
            ["order_id", "distributor_id"]
        );
        assert!(named_columns(products, "results_aggregates_unique_segment").is_empty());
    }

    #[test]
    fn check_constraints_are_found_by_the_longest_column_name() {
        let orders = tables().get("orders").unwrap();
        let violation = invalid(orders, "orders_total_amount_check");
        assert_eq!(violation.column, orders.column_index("total_amount"));
    }
}
