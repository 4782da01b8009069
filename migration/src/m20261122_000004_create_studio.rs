//! The studio domain: seed 002's `ai_clones` and `ai_tasks`, with the seed's indexes
//! (GIN ones on PostgreSQL only) and an owner `user_id` on tasks, which the seed reaches
//! only through the clone.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_ai_clones(manager, d).await?;
        create_ai_tasks(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, &["ai_tasks", "ai_clones"]).await
    }
}

async fn create_ai_clones(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("ai_clones")
                .col(d.id())
                .col(string_len("name", 255))
                .col(text_null("description"))
                .col(string_len("model_type", 100))
                .col(string_len("status", 50).default("active"))
                .col(json_binary("config").default("{}"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "ai_clones_status_check",
                    Expr::cust("status IN ('active', 'inactive', 'training', 'archived')"),
                ))
                .foreign_key(&mut foreign_key(
                    "ai_clones",
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
        "ai_clones_id_user_id_key",
        "ai_clones",
        &["id", "user_id"],
    )
    .await?;
    index(manager, "idx_clones_user_id", "ai_clones", &["user_id"]).await?;
    index(manager, "idx_clones_status", "ai_clones", &["status"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_clones_created_at ON ai_clones (created_at DESC)",
    )
    .await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_clones_config ON ai_clones USING GIN (config)",
    )
    .await
}

async fn create_ai_tasks(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("ai_tasks")
                .col(d.id())
                .col(uuid("clone_id"))
                .col(string_len("task_name", 255))
                .col(json_binary("task_input").default("{}"))
                .col(json_binary("task_output").default("{}"))
                .col(string_len("status", 50).default("pending"))
                .col(string_len("priority", 50).default("medium"))
                .col(text_null("error_message"))
                .col(timestamp_with_time_zone_null("completed_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("user_id"))
                .check((
                    "ai_tasks_status_check",
                    Expr::cust("status IN ('pending', 'in_progress', 'completed', 'failed')"),
                ))
                .check((
                    "ai_tasks_priority_check",
                    Expr::cust("priority IN ('low', 'medium', 'high', 'urgent')"),
                ))
                .foreign_key(&mut foreign_key(
                    "ai_tasks",
                    &["clone_id", "user_id"],
                    "ai_clones",
                    &["id", "user_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "ai_tasks",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    index(manager, "idx_tasks_clone_id", "ai_tasks", &["clone_id"]).await?;
    index(manager, "idx_tasks_user_id", "ai_tasks", &["user_id"]).await?;
    index(manager, "idx_tasks_status", "ai_tasks", &["status"]).await?;
    index(manager, "idx_tasks_priority", "ai_tasks", &["priority"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_tasks_created_at ON ai_tasks (created_at DESC)",
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_tasks_completed_at ON ai_tasks (completed_at DESC)",
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_active_tasks ON ai_tasks (clone_id) \
         WHERE status IN ('pending', 'in_progress')",
    )
    .await?;
    index(
        manager,
        "idx_tasks_clone_status",
        "ai_tasks",
        &["clone_id", "status"],
    )
    .await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_tasks_input ON ai_tasks USING GIN (task_input)",
    )
    .await?;
    postgres_only(
        manager,
        "CREATE INDEX idx_tasks_output ON ai_tasks USING GIN (task_output)",
    )
    .await
}
