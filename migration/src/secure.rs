//! What a catalog table needs beyond its DDL, one function per rule: the trigger that keeps
//! its `updated_at` current (both backends) and, on PostgreSQL, the app role's grant, its
//! row-level security policies and its change-feed trigger.
//!
//! Migrations 000009 to 000012 apply these rules to the tables of the first schema, and only
//! to those ([`first_tables`]): a table added to the catalog later does not exist yet when
//! they run, and must not change what they do. A migration that creates a new catalog table
//! calls [`secure_table`] after creating it, and [`unsecure_table`] in `down` before
//! dropping it.

use sea_orm_migration::prelude::*;

use crate::catalog::{FIRST_TABLES, TABLES, TableSpec, Tenant, updated_at_trigger};
use crate::ddl::{Ddl, SQLITE_NOW, postgres_only, sql};
use crate::m20261122_000011_create_app_role::APP_ROLE;

/// The tables of the first schema (migrations 000001 to 000008), the ones migrations 000009
/// to 000012 secure. The catalog is append-only, so this slice never changes.
pub fn first_tables() -> &'static [TableSpec] {
    &TABLES[..FIRST_TABLES]
}

/// Adds to the just-created catalog table `spec` what 000009 to 000012 gave the first
/// tables: its `updated_at` trigger (if it has one) and, on PostgreSQL, the app role's
/// grant, row-level security with its policies, and its change-feed trigger (if fed).
pub async fn secure_table(manager: &SchemaManager<'_>, spec: &TableSpec) -> Result<(), DbErr> {
    let postgres = Ddl::of(manager).is_postgres();
    if let Some(ddl) = create_updated_at_trigger(spec, postgres) {
        sql(manager, &ddl).await?;
    }
    if postgres {
        let feed = if spec.fed {
            create_change_trigger(spec)
        } else {
            String::new()
        };
        let ddl = format!(
            "{};\n{}{feed}",
            grant(std::slice::from_ref(spec)),
            create_policies(spec),
        );
        sql(manager, &ddl).await?;
    }
    Ok(())
}

/// Undoes [`secure_table`], for the `down` of the migration that made `spec`.
pub async fn unsecure_table(manager: &SchemaManager<'_>, spec: &TableSpec) -> Result<(), DbErr> {
    let postgres = Ddl::of(manager).is_postgres();
    if postgres {
        let ddl = format!(
            "{}{}{};",
            drop_change_trigger(spec),
            drop_policies(spec),
            revoke(std::slice::from_ref(spec))
        );
        sql(manager, &ddl).await?;
    }
    if let Some(ddl) = drop_updated_at_trigger(spec, postgres) {
        sql(manager, &ddl).await?;
    }
    Ok(())
}

/// The trigger that keeps `table.updated_at` current (PostgreSQL: through
/// `handle_updated_at()`), or `None` when the database does not maintain it.
pub(crate) fn create_updated_at_trigger(table: &TableSpec, postgres: bool) -> Option<String> {
    if !table.updated_at {
        return None;
    }
    let name = table.name;
    let trigger = updated_at_trigger(name);
    Some(if postgres {
        format!(
            "CREATE TRIGGER {trigger} BEFORE UPDATE ON {name} \
             FOR EACH ROW EXECUTE FUNCTION handle_updated_at()"
        )
    } else {
        // SQLite cannot assign NEW in a BEFORE trigger; the follow-up UPDATE does not
        // fire the trigger again because recursive triggers are off.
        format!(
            "CREATE TRIGGER {trigger} AFTER UPDATE ON {name} FOR EACH ROW BEGIN \
             UPDATE {name} SET updated_at = {SQLITE_NOW} WHERE id = NEW.id; END"
        )
    })
}

/// Drops what [`create_updated_at_trigger`] made.
pub(crate) fn drop_updated_at_trigger(table: &TableSpec, postgres: bool) -> Option<String> {
    if !table.updated_at {
        return None;
    }
    let trigger = updated_at_trigger(table.name);
    Some(if postgres {
        format!("DROP TRIGGER IF EXISTS {trigger} ON {}", table.name)
    } else {
        format!("DROP TRIGGER IF EXISTS {trigger}")
    })
}

/// `GRANT` of the row operations on `tables` to [`APP_ROLE`] (one statement, no `;`).
pub(crate) fn grant(tables: &[TableSpec]) -> String {
    format!(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON {} TO {APP_ROLE}",
        names(tables)
    )
}

/// Takes back what [`grant`] gave (one statement, no `;`).
pub(crate) fn revoke(tables: &[TableSpec]) -> String {
    format!("REVOKE ALL ON {} FROM {APP_ROLE}", names(tables))
}

fn names(tables: &[TableSpec]) -> String {
    tables.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
}

/// The condition under which the principal owns a row of `table`.
fn owns(table: &TableSpec) -> String {
    let owner = table.owner_column;
    match table.tenant {
        Tenant::User => format!("{owner} = (SELECT stratix_uid())"),
        Tenant::Shop => format!("{owner} = (SELECT stratix_shop_id())"),
        Tenant::Distributor => format!("{owner} IN (SELECT unnest(stratix_distributor_ids()))"),
    }
}

/// Row-level security on `table`: enabled, with the tenant policy (`service_role` or the
/// owner) and, for a table with shared rows, the policy that lets every signed-in tenant
/// of its kind read them. Statements end in `;\n`.
pub(crate) fn create_policies(table: &TableSpec) -> String {
    let name = table.name;
    let owns = owns(table);
    let mut sql = format!(
        "ALTER TABLE {name} ENABLE ROW LEVEL SECURITY;\n\
         CREATE POLICY {name}_tenant ON {name} FOR ALL \
         USING ((SELECT stratix_is_service()) OR {owns}) \
         WITH CHECK ((SELECT stratix_is_service()) OR {owns});\n"
    );
    if table.shared_when_null {
        let owner = table.owner_column;
        let signed_in = match table.tenant {
            Tenant::User => "(SELECT stratix_uid()) IS NOT NULL",
            Tenant::Shop => "(SELECT stratix_shop_id()) IS NOT NULL",
            Tenant::Distributor => "cardinality((SELECT stratix_distributor_ids())) > 0",
        };
        sql.push_str(&format!(
            "CREATE POLICY {name}_shared_read ON {name} FOR SELECT \
             USING ({owner} IS NULL AND {signed_in});\n"
        ));
    }
    sql
}

/// Drops what [`create_policies`] made and disables row-level security.
pub(crate) fn drop_policies(table: &TableSpec) -> String {
    let name = table.name;
    format!(
        "DROP POLICY IF EXISTS {name}_tenant ON {name};\n\
         DROP POLICY IF EXISTS {name}_shared_read ON {name};\n\
         ALTER TABLE {name} DISABLE ROW LEVEL SECURITY;\n"
    )
}

/// The trigger on `table` that records its changes.
pub fn change_trigger(table: &str) -> String {
    format!("{table}_change_feed")
}

/// Takes catalog table `name` (marked unfed) out of the change feed: PostgreSQL drops its
/// trigger (SQLite's service never publishes an unfed table).
pub(crate) async fn leave_feed(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    postgres_only(manager, &drop_change_trigger(spec_of(name)?)).await
}

/// Undoes [`leave_feed`], for the `down` of the migration that called it.
pub(crate) async fn rejoin_feed(manager: &SchemaManager<'_>, name: &str) -> Result<(), DbErr> {
    postgres_only(manager, &create_change_trigger(spec_of(name)?)).await
}

fn spec_of(name: &str) -> Result<&'static TableSpec, DbErr> {
    crate::catalog::find(name).ok_or_else(|| DbErr::Custom(format!("{name} is not in the catalog")))
}

/// The trigger that records the changes of `table` through `stratix_change_feed()`, with
/// its owner column and feed key. Ends in `;\n`.
pub(crate) fn create_change_trigger(table: &TableSpec) -> String {
    format!(
        "CREATE TRIGGER {trigger} AFTER INSERT OR UPDATE OR DELETE ON {name} \
         FOR EACH ROW EXECUTE FUNCTION stratix_change_feed('{name}', '{owner}', '{key}');\n",
        trigger = change_trigger(table.name),
        name = table.name,
        owner = table.owner_column,
        key = table.feed_key.unwrap_or_default(),
    )
}

/// Drops what [`create_change_trigger`] made. Ends in `;\n`.
pub(crate) fn drop_change_trigger(table: &TableSpec) -> String {
    format!(
        "DROP TRIGGER IF EXISTS {} ON {};\n",
        change_trigger(table.name),
        table.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tables of the first schema, in creation order, as migrations 000001 to 000008
    /// made them.
    const FIRST_SCHEMA: [&str; 47] = [
        // accounts
        "users",
        "profiles",
        "api_keys",
        "notifications",
        "notification_preferences",
        "activity_logs",
        "usage_metrics",
        // billing
        "credit_accounts",
        "credit_transactions",
        "payments",
        // crawling
        "projects",
        "crawl_jobs",
        "images",
        // studio
        "ai_clones",
        "ai_tasks",
        // shopify
        "shops",
        "products",
        "content_revisions",
        "performance_metrics",
        "ai_models",
        "usage_logs",
        "cache",
        "events",
        "orders_cache",
        // experiments
        "recommendations",
        "patches",
        "experiments",
        "assignments",
        "results_aggregates",
        // distribution
        "distributors",
        "user_profiles",
        "user_invitations",
        "customers",
        "customer_labels",
        "conversations",
        "messages",
        "ai_responses",
        "catalog_products",
        "product_categories",
        "orders",
        "order_products",
        "ai_usage_metrics",
        "webhook_endpoints",
        "webhook_deliveries",
        "external_integrations",
        "data_access_audits",
        "pii_detections",
    ];

    #[test]
    fn the_first_tables_are_the_first_schemas_and_nothing_more() {
        let names: Vec<_> = first_tables().iter().map(|t| t.name).collect();
        assert_eq!(names, FIRST_SCHEMA);
    }

    /// What 000009 to 000012 read of each first table besides its name. A change here
    /// would change what they do to existing databases.
    #[test]
    fn the_first_tables_rules_are_frozen() {
        let no_updated_at = [
            "activity_logs",
            "credit_transactions",
            "performance_metrics",
            "usage_logs",
            "events",
            "assignments",
            "data_access_audits",
            "pii_detections",
        ];
        let feed_keys = [
            ("crawl_jobs", "project_id"),
            ("ai_tasks", "clone_id"),
            ("results_aggregates", "experiment_id"),
            ("user_profiles", "user_id"),
            ("messages", "conversation_id"),
        ];
        for (i, table) in first_tables().iter().enumerate() {
            let name = table.name;
            let (tenant, owner) = match i {
                0 => (Tenant::User, "id"),
                1..=14 => (Tenant::User, "user_id"),
                15 => (Tenant::Shop, "id"),
                16..=28 => (Tenant::Shop, "shop_id"),
                29 => (Tenant::Distributor, "id"),
                _ => (Tenant::Distributor, "distributor_id"),
            };
            assert_eq!(
                (table.tenant, table.owner_column),
                (tenant, owner),
                "{name}"
            );
            assert_eq!(table.updated_at, !no_updated_at.contains(&name), "{name}");
            assert_eq!(table.shared_when_null, name == "ai_models", "{name}");
            let key = feed_keys.iter().find(|(t, _)| *t == name).map(|(_, k)| *k);
            assert_eq!(table.feed_key, key, "{name}");
        }
    }

    #[test]
    fn a_new_table_gets_the_same_rules_as_the_first_tables() {
        let spec = TableSpec {
            name: "widgets",
            feed_key: Some("gadget_id"),
            shared_when_null: true,
            ..*crate::catalog::find("products").unwrap()
        };
        let trigger = create_updated_at_trigger(&spec, true).unwrap();
        assert!(trigger.starts_with("CREATE TRIGGER widgets_updated_at BEFORE UPDATE ON widgets"));
        let policies = create_policies(&spec);
        assert!(policies.contains("ALTER TABLE widgets ENABLE ROW LEVEL SECURITY;"));
        assert!(policies.contains("CREATE POLICY widgets_tenant ON widgets FOR ALL"));
        assert!(policies.contains("CREATE POLICY widgets_shared_read ON widgets FOR SELECT"));
        assert_eq!(
            grant(std::slice::from_ref(&spec)),
            format!("GRANT SELECT, INSERT, UPDATE, DELETE ON widgets TO {APP_ROLE}")
        );
        assert!(create_change_trigger(&spec).ends_with(
            "EXECUTE FUNCTION stratix_change_feed('widgets', 'shop_id', 'gadget_id');\n"
        ));
    }
}
