//! Memberships of several distributors: a user may belong to more than one distributor
//! (one `user_profiles` row each), so `user_profiles` is unique per user and distributor,
//! no longer per user. On PostgreSQL, seed 003's `get_current_distributor_id()`: the
//! distributor the request's claims name (`distributor_id`, if the user is a member of
//! it), else the user's only one, else null; so the seed's example SQL runs unchanged.

use sea_orm_migration::prelude::*;

use crate::ddl::{postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

const CURRENT_DISTRIBUTOR: &str = r#"
CREATE OR REPLACE FUNCTION get_current_distributor_id() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT CASE
        WHEN stratix_claims() ->> 'distributor_id' IS NOT NULL THEN (
            SELECT d FROM unnest(stratix_distributor_ids()) AS d
            WHERE d::text = stratix_claims() ->> 'distributor_id'
        )
        WHEN cardinality(stratix_distributor_ids()) = 1 THEN (stratix_distributor_ids())[1]
    END
$$;
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql(manager, "DROP INDEX user_profiles_user_id_key").await?;
        // Also the user_id index: user_id leads.
        unique_index(
            manager,
            "user_profiles_user_id_distributor_id_key",
            "user_profiles",
            &["user_id", "distributor_id"],
        )
        .await?;
        postgres_only(manager, CURRENT_DISTRIBUTOR).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS get_current_distributor_id()",
        )
        .await?;
        sql(
            manager,
            "DROP INDEX user_profiles_user_id_distributor_id_key",
        )
        .await?;
        unique_index(
            manager,
            "user_profiles_user_id_key",
            "user_profiles",
            &["user_id"],
        )
        .await
    }
}
