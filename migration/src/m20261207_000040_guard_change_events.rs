//! `change_events` (PostgreSQL) holds the keys of every tenant's changes: which rows of
//! which owner changed. The service reads it with its own rights (the resume of
//! subscriptions, the sequencer); a request, which runs as `stratix_app` under a
//! principal's claims, must not. Row-level security now guards it like the tenant
//! tables: `stratix_app` sees its rows only as `service_role`, or outside any request (no
//! claims: a service that logs in as `stratix_app` itself).

use sea_orm_migration::prelude::*;

use crate::ddl::postgres_only;
use crate::m20261122_000011_create_app_role::APP_ROLE;
use crate::m20261122_000012_create_change_feed::CHANGE_EVENTS;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The policy's name.
const POLICY: &str = "change_events_service_only";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(
            manager,
            &format!(
                "ALTER TABLE {CHANGE_EVENTS} ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY {POLICY} ON {CHANGE_EVENTS} FOR SELECT TO {APP_ROLE}
                     USING ((SELECT stratix_is_service()) OR (SELECT stratix_claims()) IS NULL);"
            ),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(
            manager,
            &format!(
                "DROP POLICY IF EXISTS {POLICY} ON {CHANGE_EVENTS};
                 ALTER TABLE {CHANGE_EVENTS} DISABLE ROW LEVEL SECURITY;"
            ),
        )
        .await
    }
}
