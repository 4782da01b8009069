//! Every entity as data: its table name and columns, for code that treats all tables alike
//! (`stratix check`, the tests that walk every table).

use sea_orm::sea_query::TableRef;
use sea_orm::{
    ColumnTrait, ColumnType, EntityTrait, IdenStatic, Identity, Iterable, RelationTrait,
    RelationType,
};

/// One column as an entity declares it.
#[derive(Clone, Debug)]
pub struct EntityColumn {
    /// The column name.
    pub name: &'static str,
    /// The sea-orm column type.
    pub column_type: ColumnType,
    /// Whether the field is an `Option`.
    pub nullable: bool,
}

/// How a relation's far side relates to this entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelationKind {
    /// This entity holds the foreign key: one parent (`belongs_to`).
    BelongsTo,
    /// The other entity holds a unique foreign key to this one: at most one child.
    HasOne,
    /// The other entity holds a foreign key to this one: any number of children.
    HasMany,
}

/// One relation as an entity declares it, reduced to a single-column foreign key.
#[derive(Clone, Debug)]
pub struct EntityRelation {
    /// The relation's name, snake_case (`product`, `content_revisions`, `profile`).
    pub name: String,
    /// Its cardinality from this entity's side.
    pub kind: RelationKind,
    /// The table at the other end.
    pub other_table: String,
    /// The foreign-key column (on this table for `BelongsTo`, on the other table otherwise).
    pub foreign_key: String,
}

/// One entity's table, columns and relations.
#[derive(Clone, Debug)]
pub struct EntityTable {
    /// The table name.
    pub table: &'static str,
    /// The columns, in declaration order.
    pub columns: Vec<EntityColumn>,
    /// The relations, in declaration order.
    pub relations: Vec<EntityRelation>,
}

fn table_name(table: &TableRef) -> String {
    match table {
        TableRef::Table(name, _) => name.1.to_string(),
        other => format!("{other:?}"),
    }
}

fn first_column(identity: &Identity) -> String {
    identity
        .iter()
        .next()
        .map(|c| c.to_string())
        .unwrap_or_default()
}

fn describe<E: EntityTrait + Default>() -> EntityTable {
    EntityTable {
        table: E::default().table_name(),
        columns: E::Column::iter()
            .map(|column| {
                let def = column.def();
                EntityColumn {
                    name: column.as_str(),
                    column_type: def.get_column_type().clone(),
                    nullable: def.is_null(),
                }
            })
            .collect(),
        relations: E::Relation::iter()
            .map(|relation| {
                let def = relation.def();
                // sea-orm marks the side that does *not* hold the foreign key as the owner.
                let (kind, foreign_key) = if !def.is_owner {
                    (RelationKind::BelongsTo, first_column(&def.from_col))
                } else if def.rel_type == RelationType::HasOne {
                    (RelationKind::HasOne, first_column(&def.to_col))
                } else {
                    (RelationKind::HasMany, first_column(&def.to_col))
                };
                let other_table = table_name(&def.to_tbl);
                EntityRelation {
                    name: relation_name(kind, &foreign_key, &other_table),
                    kind,
                    other_table,
                    foreign_key,
                }
            })
            .collect(),
    }
}

/// A relation's name: the parent after its foreign key (`product_id` -> `product`,
/// `invited_by` -> `invited_by_user`), a single child in the singular, children by table.
fn relation_name(kind: RelationKind, foreign_key: &str, other_table: &str) -> String {
    match kind {
        RelationKind::BelongsTo => match foreign_key.strip_suffix("_id") {
            Some(stem) => stem.to_owned(),
            None => format!("{foreign_key}_{}", singular(other_table)),
        },
        RelationKind::HasOne => singular(other_table),
        RelationKind::HasMany => other_table.to_owned(),
    }
}

/// `content_revisions` -> `content_revision`, `categories` -> `category`, `patches` -> `patch`.
pub fn singular(table: &str) -> String {
    if let Some(stem) = table.strip_suffix("ies") {
        format!("{stem}y")
    } else if let Some(stem) = table.strip_suffix("ches") {
        format!("{stem}ch")
    } else if let Some(stem) = table.strip_suffix('s') {
        stem.to_owned()
    } else {
        table.to_owned()
    }
}

macro_rules! entities {
    ($($domain:ident :: { $($table:ident),* $(,)? }),* $(,)?) => {
        /// Every entity, grouped by domain in the order the migrations create them.
        pub fn all() -> Vec<EntityTable> {
            vec![$($(describe::<crate::$domain::$table::Entity>()),*),*]
        }
    };
}

entities! {
    accounts::{users, profiles, api_keys, notifications, notification_preferences, activity_logs, usage_metrics},
    billing::{credit_accounts, credit_transactions, payments},
    crawling::{projects, crawl_jobs, images},
    studio::{ai_clones, ai_tasks},
    shopify::{shops, products, content_revisions, performance_metrics, ai_models, usage_logs, cache, events, orders_cache},
    experiments::{recommendations, patches, experiments, assignments, results_aggregates},
    distribution::{
        distributors, user_profiles, user_invitations, customers, customer_labels, conversations, messages,
        ai_responses, catalog_products, product_categories, orders, order_products, ai_usage_metrics,
        webhook_endpoints, webhook_deliveries, external_integrations, data_access_audits, pii_detections,
    },
    // Added after the first schema, in the catalog's order.
    crawling::{crawl_chunks},
}
