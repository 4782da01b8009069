//! The role the service runs requests as (PostgreSQL): `stratix_app`, which neither owns
//! the tables nor bypasses row-level security, so every policy applies to it. The service
//! switches to it per transaction (`set_config('role', ...)`) or logs in as it directly.
//!
//! Roles belong to the whole cluster, so `up` creates it only if missing and `down`
//! revokes what `up` granted, dropping the role only when no other database still uses it.
//! The grants cover the tables of the first schema; later tables get theirs from
//! [`crate::secure::secure_table`].

use sea_orm_migration::prelude::*;

use crate::ddl::postgres_only;
use crate::secure::{first_tables, grant, revoke};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The role's name.
pub const APP_ROLE: &str = "stratix_app";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let grant = grant(first_tables());
        let sql = format!(
            "DO $$ BEGIN
                 -- Databases of one cluster may migrate at once: the role is shared.
                 BEGIN
                     CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
                 END;
                 IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN
                     BEGIN
                         GRANT {APP_ROLE} TO CURRENT_USER;
                     EXCEPTION WHEN OTHERS THEN
                         IF NOT pg_has_role(current_user, '{APP_ROLE}', 'MEMBER') THEN RAISE; END IF;
                     END;
                 END IF;
             END $$;
             DO $$ BEGIN
                 EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema());
             END $$;
             {grant};"
        );
        postgres_only(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let revoke = revoke(first_tables());
        let sql = format!(
            "{revoke};
             DO $$ BEGIN
                 EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {APP_ROLE}', current_schema());
                 BEGIN
                     DROP ROLE {APP_ROLE};
                 EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
                     RAISE NOTICE '{APP_ROLE} is still used by another database; kept';
                 END;
             END $$;"
        );
        postgres_only(manager, &sql).await
    }
}
