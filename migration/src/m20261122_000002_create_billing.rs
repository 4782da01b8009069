//! The billing domain: seed 001's `credit_accounts` and `credit_transactions` (named
//! there without columns, designed here) and seed 002's `payments`.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_credit_accounts(manager, d).await?;
        create_credit_transactions(manager, d).await?;
        create_payments(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the table drops its append-only trigger; the function stays behind.
        drop_tables(
            manager,
            &["payments", "credit_transactions", "credit_accounts"],
        )
        .await?;
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS credit_transactions_refuse_update()",
        )
        .await
    }
}

async fn create_credit_accounts(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("credit_accounts")
                .col(d.id())
                .col(integer("balance").default(0))
                .col(integer("lifetime_earned").default(0))
                .col(integer("lifetime_spent").default(0))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check(("credit_accounts_balance_check", Expr::cust("balance >= 0")))
                .check((
                    "credit_accounts_lifetime_check",
                    Expr::cust("lifetime_earned >= 0 AND lifetime_spent >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "credit_accounts",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "credit_accounts_user_id_key",
        "credit_accounts",
        &["user_id"],
    )
    .await?;
    unique_index(
        manager,
        "credit_accounts_id_user_id_key",
        "credit_accounts",
        &["id", "user_id"],
    )
    .await
}

async fn create_credit_transactions(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("credit_transactions")
                .col(d.id())
                .col(uuid("credit_account_id"))
                .col(integer("amount"))
                .col(integer("balance_after"))
                .col(string_len("kind", 20))
                .col(string_len_null("reference", 255))
                .col(text_null("description"))
                .col(d.created_at())
                .col(uuid("user_id"))
                .check((
                    "credit_transactions_kind_check",
                    Expr::cust(
                        "kind IN ('signup_bonus', 'purchase', 'usage', 'refund', 'adjustment')",
                    ),
                ))
                // Grants add credits and usage spends them; refunds and adjustments go
                // either way.
                .check((
                    "credit_transactions_amount_check",
                    Expr::cust(
                        "amount <> 0 AND (kind NOT IN ('signup_bonus', 'purchase') OR amount > 0) \
                         AND (kind <> 'usage' OR amount < 0)",
                    ),
                ))
                .check((
                    "credit_transactions_balance_after_check",
                    Expr::cust("balance_after >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "credit_transactions",
                    &["credit_account_id", "user_id"],
                    "credit_accounts",
                    &["id", "user_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "credit_transactions",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_credit_transactions_credit_account_id",
        "credit_transactions",
        &["credit_account_id"],
    )
    .await?;
    // The user's statement, newest first; also the user_id index.
    sql(
        manager,
        "CREATE INDEX idx_credit_transactions_user_id_created_at \
         ON credit_transactions (user_id, created_at DESC)",
    )
    .await?;
    // At most one welcome bonus per user, and a payment's credits are granted once
    // (`reference` holds the payment's order_id), however often a webhook is retried.
    sql(
        manager,
        "CREATE UNIQUE INDEX credit_transactions_signup_bonus_key \
         ON credit_transactions (user_id) WHERE kind = 'signup_bonus'",
    )
    .await?;
    sql(
        manager,
        "CREATE UNIQUE INDEX credit_transactions_purchase_reference_key \
         ON credit_transactions (reference) WHERE kind = 'purchase'",
    )
    .await?;
    // Append-only: a ledger row never changes once written (deletes still cascade from
    // the user). SQLite spells the same trigger without a function.
    if d.is_postgres() {
        sql(
            manager,
            "CREATE OR REPLACE FUNCTION credit_transactions_refuse_update() RETURNS trigger \
             LANGUAGE plpgsql AS $$ BEGIN \
             RAISE EXCEPTION 'credit_transactions is append-only' USING ERRCODE = 'restrict_violation'; \
             END $$",
        )
        .await?;
        sql(
            manager,
            "CREATE TRIGGER credit_transactions_append_only BEFORE UPDATE ON credit_transactions \
             FOR EACH ROW EXECUTE FUNCTION credit_transactions_refuse_update()",
        )
        .await
    } else {
        sql(
            manager,
            "CREATE TRIGGER credit_transactions_append_only BEFORE UPDATE ON credit_transactions \
             FOR EACH ROW BEGIN SELECT RAISE(ABORT, 'credit_transactions is append-only'); END",
        )
        .await
    }
}

async fn create_payments(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("payments")
                .col(d.id())
                .col(string_len("order_id", 255))
                .col(decimal_len("amount", 10, 2))
                .col(string_len("currency", 10).default("USD"))
                .col(string_len("status", 50).default("created"))
                .col(text_null("description"))
                .col(string_len("payment_method", 50).default("paypal"))
                .col(json_binary("metadata").default("{}"))
                .col(timestamp_with_time_zone_null("completed_at"))
                .col(integer_null("credits_granted"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid_null("user_id"))
                .check((
                    "payments_status_check",
                    Expr::cust(
                        "status IN ('created', 'pending', 'completed', 'failed', 'refunded', 'cancelled')",
                    ),
                ))
                .check(("payments_amount_check", Expr::cust("amount >= 0")))
                .check((
                    "payments_credits_granted_check",
                    Expr::cust("credits_granted IS NULL OR credits_granted >= 0"),
                ))
                // Seed 002: a payment record outlives its user (accounting).
                .foreign_key(&mut foreign_key(
                    "payments",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    // Seed 002 declares `order_id UNIQUE` and a separate `idx_payments_order_id`; one
    // unique index under the seed's name does both jobs.
    unique_index(manager, "idx_payments_order_id", "payments", &["order_id"]).await?;
    index(manager, "idx_payments_status", "payments", &["status"]).await?;
    index(manager, "idx_payments_user_id", "payments", &["user_id"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_payments_created_at ON payments (created_at DESC)",
    )
    .await?;
    index(manager, "idx_payments_amount", "payments", &["amount"]).await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_payments_metadata ON payments USING GIN (metadata)",
    )
    .await
}
