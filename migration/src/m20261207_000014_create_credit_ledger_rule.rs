//! The credits ledger drives the balance: on both backends a trigger refuses any change of
//! `credit_accounts.balance` that leaves it different from the sum of the account's
//! `credit_transactions`. A balance therefore moves only after (and with) its ledger row,
//! in the same transaction; together with `balance >= 0` and the append-only ledger
//! (000002), the database keeps the books even against a wrong API or a stray SQL session.
//! A new account (the sign-up trigger's) starts with the ledger row that pays its balance.

use sea_orm_migration::prelude::*;

use crate::catalog::LEDGER_TRIGGER;
use crate::ddl::{Ddl, sql};

#[derive(DeriveMigrationName)]
pub struct Migration;

const MESSAGE: &str = "credit_accounts.balance moves only with a credit_transactions row";

/// The constraint name violations carry, so the API reports `INVALID` on `balance`.
const CONSTRAINT: &str = "credit_accounts_balance_ledger_check";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let ledger_sum = "(SELECT coalesce(sum(t.amount), 0) FROM credit_transactions t \
                          WHERE t.credit_account_id = NEW.id)";
        if Ddl::of(manager).is_postgres() {
            // SECURITY DEFINER: the sum must see the whole ledger, whatever the caller's
            // row-level security lets it read.
            sql(
                manager,
                &format!(
                    "CREATE OR REPLACE FUNCTION credit_accounts_follow_ledger() RETURNS trigger \
                     LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$ BEGIN \
                     IF NEW.balance <> {ledger_sum} THEN \
                     RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'check_violation', \
                     CONSTRAINT = '{CONSTRAINT}'; END IF; RETURN NEW; END $$"
                ),
            )
            .await?;
            sql(
                manager,
                &format!(
                    "CREATE TRIGGER {LEDGER_TRIGGER} BEFORE UPDATE OF balance ON credit_accounts \
                     FOR EACH ROW WHEN (NEW.balance IS DISTINCT FROM OLD.balance) \
                     EXECUTE FUNCTION credit_accounts_follow_ledger()"
                ),
            )
            .await
        } else {
            sql(
                manager,
                &format!(
                    "CREATE TRIGGER {LEDGER_TRIGGER} BEFORE UPDATE OF balance ON credit_accounts \
                     FOR EACH ROW WHEN NEW.balance <> OLD.balance AND NEW.balance <> {ledger_sum} \
                     BEGIN SELECT RAISE(ABORT, '{CONSTRAINT}: {MESSAGE}'); END"
                ),
            )
            .await
        }
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if Ddl::of(manager).is_postgres() {
            sql(
                manager,
                &format!("DROP TRIGGER IF EXISTS {LEDGER_TRIGGER} ON credit_accounts"),
            )
            .await?;
            sql(
                manager,
                "DROP FUNCTION IF EXISTS credit_accounts_follow_ledger()",
            )
            .await
        } else {
            sql(manager, &format!("DROP TRIGGER IF EXISTS {LEDGER_TRIGGER}")).await
        }
    }
}
