//! `updated_at` is the database's job on both backends: a trigger per table that has one
//! (seed 001's `handle_updated_at`, seed 002's `update_updated_at_column`).

use sea_orm_migration::prelude::*;

use crate::catalog::{TABLES, updated_at_trigger};
use crate::ddl::{Ddl, SQLITE_NOW, sql};

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
        for table in TABLES.iter().filter(|t| t.updated_at) {
            let name = table.name;
            let trigger = updated_at_trigger(name);
            let ddl = if postgres {
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
            };
            sql(manager, &ddl).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let postgres = Ddl::of(manager).is_postgres();
        for table in TABLES.iter().filter(|t| t.updated_at) {
            let trigger = updated_at_trigger(table.name);
            let ddl = if postgres {
                format!("DROP TRIGGER IF EXISTS {trigger} ON {}", table.name)
            } else {
                format!("DROP TRIGGER IF EXISTS {trigger}")
            };
            sql(manager, &ddl).await?;
        }
        if postgres {
            sql(manager, "DROP FUNCTION IF EXISTS handle_updated_at()").await?;
        }
        Ok(())
    }
}
