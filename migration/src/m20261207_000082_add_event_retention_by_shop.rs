//! Per-shop retention of `events` (seed 004): a monthly partition is dropped once every
//! shop's retention has passed its month's end, so the drop takes a point in time (the
//! oldest moment any shop still keeps) instead of a number of months for everyone.

use sea_orm_migration::prelude::*;

use crate::ddl::postgres_only;
use crate::m20261122_000005_create_shopify::CREATE_DROP_PARTITIONS;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Drops the `events_YYYY_MM` partitions whose month ended at or before `before` (every
/// row older than that) and returns how many. `events_default` is never dropped.
const CREATE_DROP_PARTITIONS_BEFORE: &str = r#"
CREATE OR REPLACE FUNCTION stratix_drop_event_partitions_before(before timestamptz)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    part record;
    month_end timestamptz;
    dropped integer := 0;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must be a point in time';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('stratix_event_partitions'));
    FOR part IN
        SELECT c.relname::text AS name
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass
          AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        month_end := (make_date(substr(part.name, 8, 4)::integer, substr(part.name, 13, 2)::integer, 1)
                      + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        IF month_end <= before THEN
            EXECUTE format('DROP TABLE %I', part.name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(manager, CREATE_DROP_PARTITIONS_BEFORE).await?;
        // One rule for what is kept: the months-for-everyone function goes.
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS stratix_drop_event_partitions(integer)",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        postgres_only(manager, CREATE_DROP_PARTITIONS).await?;
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS stratix_drop_event_partitions_before(timestamptz)",
        )
        .await
    }
}
