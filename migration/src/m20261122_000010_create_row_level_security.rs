//! Row-level security on every table (PostgreSQL): DESIGN.md section 4 as policies.
//!
//! The principal is read from `request.jwt.claims`, Supabase's per-transaction setting:
//! `sub` (a user id), `role` (`authenticated`, `service_role`, ...) and, for a Shopify
//! session, `shop_id`. `service_role` sees every row. The claim readers are wrapped in
//! `(SELECT ...)` so PostgreSQL evaluates them once per statement, not once per row.

use sea_orm_migration::prelude::*;

use crate::catalog::{TABLES, TableSpec, Tenant};
use crate::ddl::postgres_only;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The functions the policies call. `stratix_distributor_ids` is SECURITY DEFINER so that
/// reading the caller's memberships is not itself filtered by `user_profiles`' policy.
const FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION stratix_claims() RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('request.jwt.claims', true), '')::jsonb
$$;
CREATE OR REPLACE FUNCTION stratix_role() RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(stratix_claims() ->> 'role', 'anon')
$$;
CREATE OR REPLACE FUNCTION stratix_is_service() RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT stratix_role() = 'service_role'
$$;
CREATE OR REPLACE FUNCTION stratix_uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT (stratix_claims() ->> 'sub')::uuid
$$;
CREATE OR REPLACE FUNCTION stratix_shop_id() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT (stratix_claims() ->> 'shop_id')::uuid
$$;
CREATE OR REPLACE FUNCTION stratix_distributor_ids() RETURNS uuid[]
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce(array_agg(distributor_id), '{}') FROM user_profiles WHERE user_id = stratix_uid()
$$;
"#;

const DROP_FUNCTIONS: &str = "
DROP FUNCTION IF EXISTS stratix_distributor_ids();
DROP FUNCTION IF EXISTS stratix_shop_id();
DROP FUNCTION IF EXISTS stratix_uid();
DROP FUNCTION IF EXISTS stratix_is_service();
DROP FUNCTION IF EXISTS stratix_role();
DROP FUNCTION IF EXISTS stratix_claims();
";

/// The condition under which the principal owns a row of `table`.
fn owns(table: &TableSpec) -> String {
    let owner = table.owner_column;
    match table.tenant {
        Tenant::User => format!("{owner} = (SELECT stratix_uid())"),
        Tenant::Shop => format!("{owner} = (SELECT stratix_shop_id())"),
        Tenant::Distributor => format!("{owner} IN (SELECT unnest(stratix_distributor_ids()))"),
    }
}

fn policies(table: &TableSpec) -> String {
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = FUNCTIONS.to_owned();
        for table in TABLES {
            sql.push_str(&policies(table));
        }
        postgres_only(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for table in TABLES {
            let name = table.name;
            sql.push_str(&format!(
                "DROP POLICY IF EXISTS {name}_tenant ON {name};\n\
                 DROP POLICY IF EXISTS {name}_shared_read ON {name};\n\
                 ALTER TABLE {name} DISABLE ROW LEVEL SECURITY;\n"
            ));
        }
        sql.push_str(DROP_FUNCTIONS);
        postgres_only(manager, &sql).await
    }
}
