//! Experiment results are counted from `events` incrementally, from a watermark: every
//! event gets `seq`, the order it arrived in (PostgreSQL: a sequence; SQLite, whose writers
//! take turns: the service numbers each batch after the last), and `event_cursors` keeps
//! how far each reader of `events` has got. `assignments` gains what the counting learns of
//! a visitor: when they were first exposed and first converted, and their segment.
//! `event_cursors` is infrastructure like `webhook_receipts`: not in the catalog.
//!
//! `events` leaves the change feed on PostgreSQL (the catalog marks it unfed): a feed row
//! and a notification per storefront event cost more than the event's own insert, and
//! its readers want it counted, not one by one. SQLite never published it.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, index, postgres_only, sql};
use crate::m20261122_000011_create_app_role::APP_ROLE;
use crate::secure::{leave_feed, rejoin_feed};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The table of watermarks.
pub const EVENT_CURSORS: &str = "event_cursors";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if Ddl::of(manager).is_postgres() {
            sql(manager, "CREATE SEQUENCE events_seq AS bigint").await?;
            sql(
                manager,
                "ALTER TABLE events ADD COLUMN seq bigint NOT NULL DEFAULT nextval('events_seq')",
            )
            .await?;
            sql(manager, "ALTER SEQUENCE events_seq OWNED BY events.seq").await?;
            sql(
                manager,
                &format!("GRANT USAGE ON SEQUENCE events_seq TO {APP_ROLE}"),
            )
            .await?;
            leave_feed(manager, "events").await?;
        } else {
            sql(
                manager,
                "ALTER TABLE events ADD COLUMN seq integer NOT NULL DEFAULT 0",
            )
            .await?;
            sql(manager, "UPDATE events SET seq = rowid").await?;
        }
        index(manager, "idx_events_seq", "events", &["seq"]).await?;

        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        for column in [
            timestamp_with_time_zone_null("exposed_at"),
            timestamp_with_time_zone_null("converted_at"),
            string_len_null("segment", 32),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("assignments")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // The counting finds a visitor's assignments by shop and visitor.
        index(
            manager,
            "idx_assignments_visitor",
            "assignments",
            &["shop_id", "anon_id"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(EVENT_CURSORS)
                    .col(string_len("name", 64).primary_key())
                    .col(big_integer("seq").default(0))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        postgres_only(
            manager,
            &format!("GRANT SELECT, INSERT, UPDATE ON {EVENT_CURSORS} TO {APP_ROLE}"),
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(EVENT_CURSORS).if_exists().to_owned())
            .await?;
        sql(manager, "DROP INDEX IF EXISTS idx_assignments_visitor").await?;
        for column in ["segment", "converted_at", "exposed_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("assignments")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        sql(manager, "DROP INDEX IF EXISTS idx_events_seq").await?;
        rejoin_feed(manager, "events").await?;
        // PostgreSQL drops the sequence with the column that owns it.
        manager
            .alter_table(Table::alter().table("events").drop_column("seq").to_owned())
            .await
    }
}
