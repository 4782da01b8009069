//! Row-level security on the tables of the first schema (PostgreSQL): DESIGN.md section 4
//! as policies. Later tables get theirs from [`crate::secure::secure_table`].
//!
//! The principal is read from `request.jwt.claims`, Supabase's per-transaction setting:
//! `sub` (a user id), `role` (`authenticated`, `service_role`, ...) and, for a Shopify
//! session, `shop_id`. `service_role` sees every row. The claim readers are wrapped in
//! `(SELECT ...)` so PostgreSQL evaluates them once per statement, not once per row.

use sea_orm_migration::prelude::*;

use crate::ddl::postgres_only;
use crate::secure::{create_policies, drop_policies, first_tables};

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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = FUNCTIONS.to_owned();
        for table in first_tables() {
            sql.push_str(&create_policies(table));
        }
        postgres_only(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for table in first_tables() {
            sql.push_str(&drop_policies(table));
        }
        sql.push_str(DROP_FUNCTIONS);
        postgres_only(manager, &sql).await
    }
}
