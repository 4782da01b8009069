//! What the database does when a user is made (seed 001's `on_auth_user_created`): it
//! inserts the user's profile, a credit account holding the 100 free credits, the ledger
//! row that grants them, and default notification preferences. Both backends make the
//! same rows, so a user inserted by the service, a worker or plain SQL is complete.

use sea_orm_migration::prelude::*;

use crate::ddl::{Ddl, SQLITE_NEW_UUID, SQLITE_NOW, sql};

/// The welcome grant, in credits (DESIGN.md: "100 free credits when a user is made").
const SIGNUP_CREDITS: i32 = 100;

/// The ledger description of the welcome grant.
const SIGNUP_DESCRIPTION: &str = "Welcome bonus";

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if Ddl::of(manager).is_postgres() {
            sql(manager, &postgres_function()).await?;
            sql(
                manager,
                "CREATE TRIGGER on_auth_user_created AFTER INSERT ON users \
                 FOR EACH ROW EXECUTE FUNCTION handle_new_user()",
            )
            .await
        } else {
            sql(manager, &sqlite_trigger()).await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if Ddl::of(manager).is_postgres() {
            sql(
                manager,
                "DROP TRIGGER IF EXISTS on_auth_user_created ON users",
            )
            .await?;
            sql(manager, "DROP FUNCTION IF EXISTS handle_new_user()").await
        } else {
            sql(manager, "DROP TRIGGER IF EXISTS on_auth_user_created").await
        }
    }
}

/// `handle_new_user()`. SECURITY DEFINER so that the inserts pass row-level security
/// whoever signs up (an anonymous request has no claims yet); `search_path FROM CURRENT`
/// pins the schema the migration ran in, which both closes the usual definer hole and
/// keeps per-test schemas working.
fn postgres_function() -> String {
    format!(
        "CREATE OR REPLACE FUNCTION handle_new_user() RETURNS trigger \
         LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  account_id uuid;
BEGIN
  INSERT INTO profiles (display_name, user_id) VALUES (NEW.name, NEW.id);
  INSERT INTO credit_accounts (balance, lifetime_earned, user_id)
    VALUES ({SIGNUP_CREDITS}, {SIGNUP_CREDITS}, NEW.id)
    RETURNING id INTO account_id;
  INSERT INTO credit_transactions
      (credit_account_id, amount, balance_after, kind, description, user_id)
    VALUES (account_id, {SIGNUP_CREDITS}, {SIGNUP_CREDITS}, 'signup_bonus', '{SIGNUP_DESCRIPTION}', NEW.id);
  INSERT INTO notification_preferences (user_id) VALUES (NEW.id);
  RETURN NEW;
END
$$"
    )
}

/// The same inserts as one SQLite trigger. SQLite's `now` is fixed for the whole
/// statement, so the four rows share one timestamp as they do on PostgreSQL.
fn sqlite_trigger() -> String {
    let id = format!("({SQLITE_NEW_UUID})");
    let now = format!("({SQLITE_NOW})");
    format!(
        "CREATE TRIGGER on_auth_user_created AFTER INSERT ON users FOR EACH ROW BEGIN
  INSERT INTO profiles (id, display_name, created_at, updated_at, user_id)
    VALUES ({id}, NEW.name, {now}, {now}, NEW.id);
  INSERT INTO credit_accounts (id, balance, lifetime_earned, created_at, updated_at, user_id)
    VALUES ({id}, {SIGNUP_CREDITS}, {SIGNUP_CREDITS}, {now}, {now}, NEW.id);
  INSERT INTO credit_transactions
      (id, credit_account_id, amount, balance_after, kind, description, created_at, user_id)
    VALUES ({id}, (SELECT id FROM credit_accounts WHERE user_id = NEW.id), {SIGNUP_CREDITS},
      {SIGNUP_CREDITS}, 'signup_bonus', '{SIGNUP_DESCRIPTION}', {now}, NEW.id);
  INSERT INTO notification_preferences (id, created_at, updated_at, user_id)
    VALUES ({id}, {now}, {now}, NEW.id);
END"
    )
}
