//! The change feed (PostgreSQL): every insert, update and delete on a catalog table is
//! appended to `change_events` and announced with `pg_notify`, so a change made by any
//! instance, worker or SQL session reaches the subscribers of every instance. This
//! migration puts the trigger on the tables of the first schema; later tables get theirs
//! from [`crate::secure::secure_table`].
//!
//! - `change_events` keeps the recent changes (ten minutes, at most [`MAX_RETAINED`] rows)
//!   under a monotonic `cursor` (bigserial), for subscribers that resume after a
//!   disconnect. It holds keys only: table, operation, row id, owner and the table's feed
//!   key (see [`feed_key`]), never row contents. It is infrastructure, not tenant data:
//!   it is not in the catalog, has no row-level security, and the service reads it with
//!   its own rights.
//! - `pg_notify('stratix_changes', ...)` carries the same keys as a small JSON object
//!   (`cursor`, `table`, `op`, `id`, `owner`, `key`), far below NOTIFY's 8 KB limit.
//! - The trigger function is SECURITY DEFINER, so the request role (`stratix_app`) needs
//!   no rights on `change_events` to write tenant tables.
//!
//! SQLite has no equivalent: the service publishes its own writes in-process.

use sea_orm_migration::prelude::*;

use crate::ddl::postgres_only;
use crate::m20261122_000011_create_app_role::APP_ROLE;
use crate::secure::{create_change_trigger, drop_change_trigger, first_tables};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The NOTIFY channel changes are announced on.
pub const CHANGE_CHANNEL: &str = "stratix_changes";

/// The retention table.
pub const CHANGE_EVENTS: &str = "change_events";

/// How long `change_events` keeps a change.
pub const RETENTION_MINUTES: i64 = 10;

/// The most rows `change_events` keeps.
pub const MAX_RETAINED: i64 = 1_000_000;

/// How often (in changes) a writer prunes `change_events` in passing.
const PRUNE_EVERY: i64 = 1000;

/// The feed key column of `table`, if it has one (declared in the catalog). Its value
/// rides along with every change of the table.
pub fn feed_key(table: &str) -> Option<&'static str> {
    crate::catalog::find(table)?.feed_key
}

fn function() -> String {
    format!(
        r#"
CREATE OR REPLACE FUNCTION stratix_change_feed() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    rec jsonb;
    v_id uuid;
    v_owner uuid;
    v_key uuid;
    v_cursor bigint;
    v_floor bigint;
BEGIN
    -- TG_ARGV: the catalog table (partitions report their own name), its owner column and
    -- its feed key column ('' for none).
    IF TG_OP = 'DELETE' THEN rec := to_jsonb(OLD); ELSE rec := to_jsonb(NEW); END IF;
    v_id := (rec ->> 'id')::uuid;
    v_owner := (rec ->> TG_ARGV[1])::uuid;
    IF TG_ARGV[2] <> '' THEN v_key := (rec ->> TG_ARGV[2])::uuid; END IF;
    INSERT INTO {CHANGE_EVENTS} AS e (table_name, op, row_id, owner, feed_key)
        VALUES (TG_ARGV[0], TG_OP, v_id, v_owner, v_key)
        RETURNING e.cursor INTO v_cursor;
    PERFORM pg_notify('{CHANGE_CHANNEL}', json_build_object(
        'cursor', v_cursor, 'table', TG_ARGV[0], 'op', TG_OP,
        'id', v_id, 'owner', v_owner, 'key', v_key)::text);
    IF v_cursor % {PRUNE_EVERY} = 0 THEN
        SELECT e.cursor INTO v_floor FROM {CHANGE_EVENTS} e
            WHERE e.created_at < now() - interval '{RETENTION_MINUTES} minutes'
            ORDER BY e.created_at DESC LIMIT 1;
        v_floor := greatest(v_floor, v_cursor - {MAX_RETAINED});
        -- The newest expired row stays, so min(cursor) tells resuming clients whether
        -- anything after their cursor was pruned.
        DELETE FROM {CHANGE_EVENTS} e WHERE e.cursor < v_floor;
    END IF;
    RETURN NULL;
END $$;
"#
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = format!(
            "CREATE TABLE {CHANGE_EVENTS} (
                 cursor bigserial PRIMARY KEY,
                 table_name text NOT NULL,
                 op text NOT NULL CHECK (op IN ('INSERT', 'UPDATE', 'DELETE')),
                 row_id uuid NOT NULL,
                 owner uuid,
                 feed_key uuid,
                 created_at timestamptz NOT NULL DEFAULT now()
             );
             CREATE INDEX idx_{CHANGE_EVENTS}_created_at ON {CHANGE_EVENTS} (created_at);
             GRANT SELECT ON {CHANGE_EVENTS} TO {APP_ROLE};
             {}",
            function()
        );
        for table in first_tables() {
            sql.push_str(&create_change_trigger(table));
        }
        postgres_only(manager, &sql).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut sql = String::new();
        for table in first_tables() {
            sql.push_str(&drop_change_trigger(table));
        }
        sql.push_str(&format!(
            "DROP FUNCTION IF EXISTS stratix_change_feed();
             DROP TABLE IF EXISTS {CHANGE_EVENTS};"
        ));
        postgres_only(manager, &sql).await
    }
}
