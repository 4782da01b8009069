//! The GraphQL view of the table model: type and field names for every table, and what
//! each field resolves to. Built once; types, argument parsing and resolvers share it.

use std::collections::HashMap;
use std::sync::OnceLock;

use entity::registry::RelationKind;

use super::names::{camel, column_field, type_name};
use crate::tables::{Table, tables};

/// What a field of a table's object type is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// The global `id`.
    GlobalId,
    /// A column (by index).
    Column(usize),
    /// A relation (by index into the table's relations).
    Relation(usize),
}

/// One table as GraphQL sees it.
#[derive(Debug)]
pub struct GqlTable {
    /// The table's index in [`tables()`].
    pub table: usize,
    /// The object type name (`ContentRevision`).
    pub type_name: String,
    /// The root query field (`contentRevisions`).
    pub root_field: String,
    /// Field name -> what it resolves.
    pub fields: HashMap<String, FieldKind>,
    /// Column index -> field name (empty for secret columns).
    pub column_fields: Vec<String>,
    /// Relation index -> field name.
    pub relation_fields: Vec<String>,
}

impl GqlTable {
    /// The table model entry.
    pub fn table(&self) -> &'static Table {
        &tables().all[self.table]
    }

    /// The column behind field `name`, if it is a column (`rowId` included).
    pub fn column(&self, name: &str) -> Option<usize> {
        match self.fields.get(name)? {
            FieldKind::Column(i) => Some(*i),
            _ => None,
        }
    }

    fn build(table: &Table) -> Self {
        let mut fields = HashMap::from([("id".to_owned(), FieldKind::GlobalId)]);
        let column_fields = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if c.secret {
                    return String::new();
                }
                let name = column_field(c.name);
                fields.insert(name.clone(), FieldKind::Column(i));
                name
            })
            .collect();
        let relation_fields = table
            .relations
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let mut name = camel(&r.name);
                if fields.contains_key(&name) {
                    name.push_str(if r.kind == RelationKind::BelongsTo {
                        "Ref"
                    } else {
                        "List"
                    });
                }
                fields.insert(name.clone(), FieldKind::Relation(i));
                name
            })
            .collect();
        Self {
            table: table.index,
            type_name: type_name(table.name),
            root_field: camel(table.name),
            fields,
            column_fields,
            relation_fields,
        }
    }
}

/// Every table's GraphQL view, by table index.
pub fn model() -> &'static [GqlTable] {
    static MODEL: OnceLock<Vec<GqlTable>> = OnceLock::new();
    MODEL.get_or_init(|| tables().all.iter().map(GqlTable::build).collect())
}

/// The table whose object type is `type_name`.
pub fn by_type_name(type_name: &str) -> Option<&'static GqlTable> {
    model().iter().find(|t| t.type_name == type_name)
}
