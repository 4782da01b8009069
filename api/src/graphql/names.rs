//! GraphQL names for tables, columns and relations, derived from the SQL names.

/// `content_revisions` -> `contentRevisions`.
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = true;
        } else if upper {
            out.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

/// `content_revisions` -> `ContentRevisions`.
pub fn pascal(snake: &str) -> String {
    let camel = camel(snake);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `SHOPIFY_ID` for `shopify_id`.
pub fn screaming(snake: &str) -> String {
    snake.to_ascii_uppercase()
}

/// The object type for one row of `table`: `content_revisions` -> `ContentRevision`.
pub fn type_name(table: &str) -> String {
    match migration::catalog::find(table).and_then(|spec| spec.type_name) {
        Some(name) => name.to_owned(),
        None => pascal(&entity::registry::singular(table)),
    }
}

/// The GraphQL field for a column: `id` is the global id, so the uuid is `rowId`.
pub fn column_field(column: &str) -> String {
    if column == "id" {
        "rowId".to_owned()
    } else {
        camel(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_get_singular_type_names() {
        assert_eq!(type_name("content_revisions"), "ContentRevision");
        assert_eq!(type_name("webhook_deliveries"), "WebhookDelivery");
        assert_eq!(type_name("patches"), "Patch");
        assert_eq!(type_name("results_aggregates"), "ResultsAggregate");
        assert_eq!(type_name("cache"), "CacheEntry");
        assert_eq!(camel("ai_tasks"), "aiTasks");
        assert_eq!(column_field("id"), "rowId");
    }
}
