//! `updated_at` is the database's job on both backends: a trigger per table that has one
//! (seed 001's `handle_updated_at`, seed 002's `update_updated_at_column`), on the tables
//! of the first schema; later tables get theirs from [`crate::secure::secure_table`].

use sea_orm_migration::prelude::*;

use crate::ddl::{Ddl, sql};
use crate::secure::{create_updated_at_trigger, drop_updated_at_trigger, first_tables};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = Ddl::of(manager).is_postgres();
        if postgres {
            sql(
                manager,
                "CREATE OR REPLACE FUNCTION handle_updated_at() RETURNS trigger \
                 LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at = now(); RETURN NEW; END $$",
            )
            .await?;
        }
        for table in first_tables() {
            if let Some(ddl) = create_updated_at_trigger(table, postgres) {
                sql(manager, &ddl).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = Ddl::of(manager).is_postgres();
        for table in first_tables() {
            if let Some(ddl) = drop_updated_at_trigger(table, postgres) {
                sql(manager, &ddl).await?;
            }
        }
        if postgres {
            sql(manager, "DROP FUNCTION IF EXISTS handle_updated_at()").await?;
        }
        Ok(())
    }
}
