//! The table model the API serves: every entity joined with its catalog entry, built once.
//!
//! Columns come from the entities, owners from `migration::catalog`, relations from the
//! entities' `belongs_to` / `has_one` / `has_many` declarations. Everything generic (the
//! GraphQL types, filters, loaders, tenancy) reads this model, so a table is declared once.

use std::collections::HashMap;
use std::sync::OnceLock;

use entity::registry::{self, RelationKind};
use migration::catalog::{self, TableSpec};
use sea_orm::ColumnType;

/// What a column holds, as far as reading, filtering and ordering care.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// A uuid.
    Uuid,
    /// Text of any length.
    Text,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    BigInt,
    /// A floating-point number.
    Float,
    /// An exact decimal (money, ratios).
    Decimal,
    /// A boolean.
    Bool,
    /// A point in time (timestamptz).
    DateTime,
    /// A calendar date.
    Date,
    /// A JSON document.
    Json,
    /// Raw bytes.
    Bytes,
}

impl ValueKind {
    fn of(column_type: &ColumnType) -> Self {
        match column_type {
            ColumnType::Uuid => Self::Uuid,
            ColumnType::TinyInteger
            | ColumnType::SmallInteger
            | ColumnType::Integer
            | ColumnType::TinyUnsigned
            | ColumnType::SmallUnsigned
            | ColumnType::Unsigned => Self::Int,
            ColumnType::BigInteger | ColumnType::BigUnsigned => Self::BigInt,
            ColumnType::Float | ColumnType::Double => Self::Float,
            ColumnType::Decimal(_) | ColumnType::Money(_) => Self::Decimal,
            ColumnType::Boolean => Self::Bool,
            ColumnType::TimestampWithTimeZone | ColumnType::Timestamp | ColumnType::DateTime => {
                Self::DateTime
            }
            ColumnType::Date => Self::Date,
            ColumnType::Json | ColumnType::JsonBinary => Self::Json,
            ColumnType::Binary(_) | ColumnType::VarBinary(_) | ColumnType::Blob => Self::Bytes,
            _ => Self::Text,
        }
    }

    /// Whether values of this kind can be summed and averaged.
    pub fn is_numeric(self) -> bool {
        matches!(self, Self::Int | Self::BigInt | Self::Float | Self::Decimal)
    }

    /// Whether values of this kind have an order (and so a min and max).
    pub fn is_ordered(self) -> bool {
        !matches!(self, Self::Json | Self::Bytes | Self::Bool)
    }
}

/// One column of a table.
#[derive(Clone, Debug)]
pub struct Column {
    /// The column name.
    pub name: &'static str,
    /// What it holds.
    pub kind: ValueKind,
    /// Whether it may be null.
    pub nullable: bool,
    /// Whether it holds a secret (never selected for reading, never a field).
    pub secret: bool,
    /// The most characters it holds (`varchar(n)`), checked by the API on both backends.
    pub max_len: Option<u32>,
    /// Served in full only to some (see `migration::catalog::Masked`).
    pub mask: Option<Mask>,
}

/// A masked column's rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mask {
    /// The column served in its place.
    pub redacted: usize,
    /// The least role that reads it in full.
    pub full_to: migration::catalog::Role,
}

impl Column {
    /// Whether filters, sorts and groups may use the column: not a secret, not masked.
    pub fn queryable(&self) -> bool {
        !self.secret && self.mask.is_none()
    }
}

/// One relation of a table, through a single-column foreign key.
#[derive(Clone, Debug)]
pub struct Relation {
    /// The entity's name for it, snake_case.
    pub name: String,
    /// Its cardinality from this table's side.
    pub kind: RelationKind,
    /// The table at the other end (index into [`Tables`]).
    pub other: usize,
    /// The foreign-key column: on this table for `BelongsTo`, on `other` otherwise.
    pub foreign_key: usize,
}

/// One table.
#[derive(Clone, Debug)]
pub struct Table {
    /// Its index in [`Tables::all`].
    pub index: usize,
    /// The table name.
    pub name: &'static str,
    /// Its catalog entry: owner kind and column. `None` means no owner rule, and such a
    /// table cannot be read at all.
    pub spec: Option<&'static TableSpec>,
    /// The columns, in entity order.
    pub columns: Vec<Column>,
    /// The relations, in entity order.
    pub relations: Vec<Relation>,
}

impl Table {
    /// The index of the column named `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The index of the `id` column.
    pub fn id_column(&self) -> usize {
        self.column_index("id").unwrap_or(0)
    }

    /// The columns a client may give when creating a row: all but those the server sets
    /// (the id, the timestamps unless declared `given`, the secrets and the declared
    /// `server_set`). The owner key is among them: only `service_role` may name another
    /// owner than its own.
    pub fn create_columns(&self) -> Vec<usize> {
        let Some(spec) = self.spec else {
            return Vec::new();
        };
        (0..self.columns.len())
            .filter(|&i| {
                let c = &self.columns[i];
                let timestamp = matches!(c.name, "created_at" | "updated_at")
                    && !spec.writes.given.contains(&c.name);
                c.name != "id"
                    && !timestamp
                    && !c.secret
                    && !spec.writes.server_set.contains(&c.name)
            })
            .collect()
    }

    /// The columns a client may change: those it may create, minus the owner key (a row
    /// never moves to another tenant) and the declared `fixed` ones.
    pub fn update_columns(&self) -> Vec<usize> {
        let Some(spec) = self.spec else {
            return Vec::new();
        };
        self.create_columns()
            .into_iter()
            .filter(|&i| {
                let name = self.columns[i].name;
                name != spec.owner_column && !spec.writes.fixed.contains(&name)
            })
            .collect()
    }
}

/// Every table the API serves.
#[derive(Debug)]
pub struct Tables {
    /// The tables, in catalog order.
    pub all: Vec<Table>,
    by_name: HashMap<&'static str, usize>,
}

impl Tables {
    /// The table named `name`.
    pub fn get(&self, name: &str) -> Option<&Table> {
        self.by_name.get(name).map(|&i| &self.all[i])
    }

    /// The table named `name`, which the code itself names: its absence is a bug.
    pub fn named(&self, name: &str) -> Result<&Table, crate::error::ApiError> {
        self.get(name)
            .ok_or_else(|| crate::error::ApiError::Internal(format!("no table {name}")))
    }

    fn build() -> Self {
        let entities = registry::all();
        let by_name: HashMap<&'static str, usize> = entities
            .iter()
            .enumerate()
            .map(|(i, e)| (e.table, i))
            .collect();
        let all = entities
            .iter()
            .enumerate()
            .map(|(index, entity)| {
                let spec = catalog::find(entity.table);
                let mask = |name: &str| {
                    let masked = spec?.masked.iter().find(|m| m.column == name)?;
                    Some(Mask {
                        redacted: entity
                            .columns
                            .iter()
                            .position(|c| c.name == masked.redacted)?,
                        full_to: masked.full_to,
                    })
                };
                let columns: Vec<Column> = entity
                    .columns
                    .iter()
                    .map(|c| Column {
                        mask: mask(c.name),
                        name: c.name,
                        kind: ValueKind::of(&c.column_type),
                        nullable: c.nullable,
                        secret: catalog::find(entity.table)
                            .is_some_and(|spec| spec.secrets.contains(&c.name)),
                        max_len: match c.column_type {
                            ColumnType::String(sea_orm::sea_query::StringLen::N(n)) => Some(n),
                            _ => None,
                        },
                    })
                    .collect();
                let relations = entity
                    .relations
                    .iter()
                    .filter_map(|r| {
                        let other = *by_name.get(r.other_table.as_str())?;
                        let holder = if r.kind == RelationKind::BelongsTo {
                            entity
                        } else {
                            &entities[other]
                        };
                        let foreign_key = holder
                            .columns
                            .iter()
                            .position(|c| c.name == r.foreign_key)?;
                        Some(Relation {
                            name: r.name.clone(),
                            kind: r.kind,
                            other,
                            foreign_key,
                        })
                    })
                    .collect();
                Table {
                    index,
                    name: entity.table,
                    spec: catalog::find(entity.table),
                    columns,
                    relations,
                }
            })
            .collect();
        Self { all, by_name }
    }
}

/// The table model, built on first use.
pub fn tables() -> &'static Tables {
    static TABLES: OnceLock<Tables> = OnceLock::new();
    TABLES.get_or_init(Tables::build)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_has_an_owner_rule_and_an_id() {
        let tables = tables();
        assert_eq!(tables.all.len(), migration::catalog::TABLES.len());
        for table in &tables.all {
            assert!(table.spec.is_some(), "{} has no catalog entry", table.name);
            assert_eq!(
                table.columns[table.id_column()].name,
                "id",
                "{}",
                table.name
            );
            assert!(
                table.columns.len() < 64,
                "{} has too many columns",
                table.name
            );
        }
    }

    #[test]
    fn every_foreign_key_is_a_relation_both_ways() {
        let tables = tables();
        for table in &tables.all {
            for relation in table
                .relations
                .iter()
                .filter(|r| r.kind == RelationKind::BelongsTo)
            {
                let parent = &tables.all[relation.other];
                let reverse = parent.relations.iter().any(|r| {
                    r.kind != RelationKind::BelongsTo
                        && r.other == table.index
                        && r.foreign_key == relation.foreign_key
                });
                assert!(
                    reverse,
                    "{}.{} -> {} has no reverse relation on {}",
                    table.name, table.columns[relation.foreign_key].name, parent.name, parent.name
                );
            }
        }
    }
}
