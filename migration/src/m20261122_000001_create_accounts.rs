//! The accounts domain: `users` (seed 002, the identity root standing in for Supabase's
//! `auth.users`) and the per-user tables of seed 001 (`profiles`, `api_keys`,
//! `notifications`, `notification_preferences`, `usage_metrics`), plus seed 002's
//! `activity_logs`. Seed 001 only names its tables, so their columns are designed here;
//! docs/schema/accounts.md says which.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_users(manager, d).await?;
        create_profiles(manager, d).await?;
        create_api_keys(manager, d).await?;
        create_notifications(manager, d).await?;
        create_notification_preferences(manager, d).await?;
        create_activity_logs(manager, d).await?;
        create_usage_metrics(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            &[
                "usage_metrics",
                "activity_logs",
                "notification_preferences",
                "notifications",
                "api_keys",
                "profiles",
                "users",
            ],
        )
        .await
    }
}

/// The notification kinds a user can switch per channel in `notification_preferences`;
/// `notifications.type` also allows `system`, which cannot be switched off.
const NOTIFICATION_TYPES: &str =
    "'system', 'crawl_job', 'ai_task', 'billing', 'security', 'marketing'";

async fn create_users(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("users")
                .col(d.id())
                .col(string_len("email", 255))
                .col(string_len_null("name", 255))
                .col(string_len_null("password_hash", 255))
                .col(string_len("role", 50).default("user"))
                .col(timestamp_with_time_zone_null("last_login"))
                .col(d.created_at())
                .col(d.updated_at())
                // The service lower-cases addresses before writing; the check keeps a
                // differently cased duplicate from slipping past the unique index.
                .check((
                    "users_email_check",
                    Expr::cust("email = lower(email) AND email <> ''"),
                ))
                .to_owned(),
        )
        .await?;
    // Seed 002 declares `email UNIQUE` and a separate `idx_users_email`; one unique index
    // under the seed's name does both jobs.
    unique_index(manager, "idx_users_email", "users", &["email"]).await?;
    index(manager, "idx_users_created_at", "users", &["created_at"]).await
}

async fn create_profiles(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("profiles")
                .col(d.id())
                .col(string_len_null("display_name", 255))
                .col(text_null("avatar_url"))
                .col(text_null("bio"))
                .col(string_len("timezone", 64).default("UTC"))
                .col(string_len("locale", 16).default("en"))
                .col(boolean("onboarding_completed").default(false))
                .col(timestamp_with_time_zone_null("onboarding_completed_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .foreign_key(&mut foreign_key(
                    "profiles",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    unique_index(manager, "profiles_user_id_key", "profiles", &["user_id"]).await
}

async fn create_api_keys(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("api_keys")
                .col(d.id())
                .col(string_len("name", 200))
                .col(string_len("key_prefix", 20))
                .col(string_len("key_hash", 255))
                .col(json_binary("scopes").default(r#"["read"]"#))
                .col(timestamp_with_time_zone_null("last_used_at"))
                .col(timestamp_with_time_zone_null("expires_at"))
                .col(timestamp_with_time_zone_null("revoked_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .foreign_key(&mut foreign_key(
                    "api_keys",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    unique_index(manager, "api_keys_key_hash_key", "api_keys", &["key_hash"]).await?;
    index(manager, "idx_api_keys_user_id", "api_keys", &["user_id"]).await
}

async fn create_notifications(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("notifications")
                .col(d.id())
                .col(string_len("type", 50))
                .col(string_len("severity", 20).default("info"))
                .col(string_len("title", 255))
                .col(text("body"))
                .col(json_binary("data").default("{}"))
                .col(text_null("action_url"))
                .col(timestamp_with_time_zone_null("read_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "notifications_type_check",
                    Expr::cust(format!("type IN ({NOTIFICATION_TYPES})")),
                ))
                .check((
                    "notifications_severity_check",
                    Expr::cust("severity IN ('info', 'success', 'warning', 'error')"),
                ))
                .foreign_key(&mut foreign_key(
                    "notifications",
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
        "idx_notifications_user_id",
        "notifications",
        &["user_id"],
    )
    .await?;
    // The unread badge and the inbox's first page.
    sql(
        manager,
        "CREATE INDEX idx_notifications_user_unread ON notifications (user_id, created_at DESC) \
         WHERE read_at IS NULL",
    )
    .await
}

async fn create_notification_preferences(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    let mut table = Table::create();
    table.table("notification_preferences").col(d.id());
    // One email and one in-app switch per kind; marketing is opt-in.
    for kind in ["crawl_job", "ai_task", "billing", "security", "marketing"] {
        let on = kind != "marketing";
        table
            .col(boolean(format!("{kind}_email")).default(on))
            .col(boolean(format!("{kind}_in_app")).default(on));
    }
    table
        .col(string_len("digest_frequency", 20).default("immediate"))
        .col(d.created_at())
        .col(d.updated_at())
        .col(uuid("user_id"))
        .check((
            "notification_preferences_digest_frequency_check",
            Expr::cust("digest_frequency IN ('immediate', 'daily', 'weekly', 'never')"),
        ))
        .foreign_key(&mut foreign_key(
            "notification_preferences",
            &["user_id"],
            "users",
            &["id"],
            ForeignKeyAction::Cascade,
        ));
    manager.create_table(table).await?;
    unique_index(
        manager,
        "notification_preferences_user_id_key",
        "notification_preferences",
        &["user_id"],
    )
    .await
}

async fn create_activity_logs(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("activity_logs")
                .col(d.id())
                .col(string_len("log_type", 50))
                .col(uuid("entity_id"))
                .col(string_len("action", 255))
                .col(json_binary("details").default("{}"))
                .col(string_len("level", 50).default("info"))
                .col(d.created_at())
                .col(uuid_null("user_id"))
                .check((
                    "activity_logs_level_check",
                    Expr::cust("level IN ('debug', 'info', 'warning', 'error', 'critical')"),
                ))
                // Seed 002: the log outlives the user it names.
                .foreign_key(&mut foreign_key(
                    "activity_logs",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::SetNull,
                ))
                .to_owned(),
        )
        .await?;
    index(manager, "idx_logs_type", "activity_logs", &["log_type"]).await?;
    index(
        manager,
        "idx_logs_entity_id",
        "activity_logs",
        &["entity_id"],
    )
    .await?;
    index(manager, "idx_logs_level", "activity_logs", &["level"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_logs_created_at ON activity_logs (created_at DESC)",
    )
    .await?;
    index(manager, "idx_logs_user_id", "activity_logs", &["user_id"]).await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_logs_details ON activity_logs USING GIN (details)",
    )
    .await
}

async fn create_usage_metrics(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("usage_metrics")
                .col(d.id())
                .col(date("date"))
                .col(string_len("metric", 50))
                .col(big_integer("value").default(0))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check(("usage_metrics_value_check", Expr::cust("value >= 0")))
                .foreign_key(&mut foreign_key(
                    "usage_metrics",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // Also serves as the user_id index: user_id leads.
    unique_index(
        manager,
        "usage_metrics_user_id_date_metric_key",
        "usage_metrics",
        &["user_id", "date", "metric"],
    )
    .await
}
