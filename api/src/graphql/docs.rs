//! Descriptions for the schema, taken from the entities' doc comments at build time.

include!(concat!(env!("OUT_DIR"), "/entity_docs.rs"));

/// The description of `table`'s rows.
pub fn table(table: &str) -> Option<&'static str> {
    TABLE_DOCS
        .iter()
        .find(|(t, _)| *t == table)
        .map(|(_, doc)| *doc)
        .filter(|doc| !doc.is_empty())
}

/// The description of `table`'s field `field` (a column or a relation).
pub fn field(table: &str, field: &str) -> Option<&'static str> {
    FIELD_DOCS
        .iter()
        .find(|(t, f, _)| *t == table && *f == field)
        .map(|(_, _, doc)| *doc)
}
