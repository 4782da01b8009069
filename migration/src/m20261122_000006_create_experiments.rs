//! The experiments domain, seed 004: a shop's `recommendations`, the `patches` applied from
//! them, and A/B `experiments` with their sticky visitor `assignments` and the worker's
//! `results_aggregates`. docs/schema/experiments.md lists what was added to the seed.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_recommendations(manager, d).await?;
        create_patches(manager, d).await?;
        create_experiments(manager, d).await?;
        create_assignments(manager, d).await?;
        create_results_aggregates(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            &[
                "results_aggregates",
                "assignments",
                "experiments",
                "patches",
                "recommendations",
            ],
        )
        .await
    }
}

async fn create_recommendations(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("recommendations")
                .col(d.id())
                .col(text("entity_type"))
                .col(text("entity_id"))
                .col(text("category"))
                .col(text("rule_id"))
                .col(text("severity"))
                .col(text("rationale"))
                .col(json_binary_null("expected_impact"))
                .col(json_binary_null("patch_payload"))
                .col(text("status").default("pending"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check((
                    "recommendations_status_check",
                    Expr::cust(
                        "status IN ('pending', 'accepted', 'applied', 'dismissed', 'rolled_back')",
                    ),
                ))
                .foreign_key(&mut foreign_key(
                    "recommendations",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_recommendations_shop_status",
        "recommendations",
        &["shop_id", "status"],
    )
    .await?;
    index(
        manager,
        "idx_recommendations_shop_entity",
        "recommendations",
        &["shop_id", "entity_type", "entity_id"],
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_recommendations_shop_created ON recommendations (shop_id, created_at DESC)",
    )
    .await
}

async fn create_patches(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("patches")
                .col(d.id())
                .col(uuid_null("recommendation_id"))
                .col(text("applied_to"))
                .col(json_binary("payload"))
                .col(json_binary("rollback_payload"))
                .col(text("applied_by").default("merchant"))
                .col(d.timestamp_now("applied_at"))
                .col(integer("version").default(1))
                .col(timestamp_with_time_zone_null("rolled_back_at"))
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check(("patches_version_check", Expr::cust("version >= 1")))
                // The seed's ON DELETE SET NULL cannot go through a composite key (it would
                // null `shop_id` too), so this one stays a plain foreign key.
                .foreign_key(&mut foreign_key(
                    "patches",
                    &["recommendation_id"],
                    "recommendations",
                    &["id"],
                    ForeignKeyAction::SetNull,
                ))
                .foreign_key(&mut foreign_key(
                    "patches",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // One row per version of a target; two writers of the same next version collide here.
    unique_index(
        manager,
        "patches_shop_id_applied_to_version_key",
        "patches",
        &["shop_id", "applied_to", "version"],
    )
    .await?;
    index(manager, "idx_patches_shop", "patches", &["shop_id"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_patches_applied_to ON patches (shop_id, applied_to, applied_at DESC)",
    )
    .await?;
    index(
        manager,
        "idx_patches_recommendation_id",
        "patches",
        &["recommendation_id"],
    )
    .await
}

async fn create_experiments(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("experiments")
                .col(d.id())
                .col(text("name"))
                .col(text("target"))
                .col(json_binary("allocation"))
                .col(json_binary("variants"))
                .col(timestamp_with_time_zone_null("started_at"))
                .col(timestamp_with_time_zone_null("ended_at"))
                .col(text("primary_metric").default("purchase_rate"))
                .col(json_binary("guardrails").default("{}"))
                .col(text("status").default("draft"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check((
                    "experiments_status_check",
                    Expr::cust("status IN ('draft', 'running', 'paused', 'completed', 'archived')"),
                ))
                // Only a draft (or a draft archived unstarted) has no start time.
                .check((
                    "experiments_started_check",
                    Expr::cust("started_at IS NOT NULL OR status IN ('draft', 'archived')"),
                ))
                .foreign_key(&mut foreign_key(
                    "experiments",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "experiments_id_shop_id_key",
        "experiments",
        &["id", "shop_id"],
    )
    .await?;
    index(manager, "idx_experiments_shop", "experiments", &["shop_id"]).await?;
    index(
        manager,
        "idx_experiments_shop_status",
        "experiments",
        &["shop_id", "status"],
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_experiments_shop_started ON experiments (shop_id, started_at DESC)",
    )
    .await
}

async fn create_assignments(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("assignments")
                .col(d.id())
                .col(uuid("experiment_id"))
                .col(text("anon_id"))
                .col(text("session_id"))
                .col(text("variant"))
                .col(d.timestamp_now("assigned_at"))
                .col(uuid("shop_id"))
                .foreign_key(&mut foreign_key(
                    "assignments",
                    &["experiment_id", "shop_id"],
                    "experiments",
                    &["id", "shop_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "assignments",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // Seed 004 declares UNIQUE (shop_id, experiment_id, anon_id) and `idx_assignments_lookup`
    // on the same columns; one unique index under the seed's name does both jobs (and
    // makes the assignment sticky: a visitor's second assignment conflicts).
    unique_index(
        manager,
        "idx_assignments_lookup",
        "assignments",
        &["shop_id", "experiment_id", "anon_id"],
    )
    .await?;
    index(
        manager,
        "idx_assignments_experiment",
        "assignments",
        &["experiment_id", "variant"],
    )
    .await
}

async fn create_results_aggregates(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("results_aggregates")
                .col(d.id())
                .col(uuid("experiment_id"))
                .col(text("variant"))
                .col(text_null("segment"))
                .col(integer("visitors").default(0))
                .col(integer("views").default(0))
                .col(integer("add_to_cart").default(0))
                .col(integer("begin_checkout").default(0))
                .col(integer("purchase").default(0))
                .col(decimal_len("revenue", 14, 2).default(0))
                .col(json_binary_null("posterior"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check((
                    "results_aggregates_counts_check",
                    Expr::cust(
                        "visitors >= 0 AND views >= 0 AND add_to_cart >= 0 \
                         AND begin_checkout >= 0 AND purchase >= 0",
                    ),
                ))
                .check((
                    "results_aggregates_revenue_check",
                    Expr::cust("revenue >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "results_aggregates",
                    &["experiment_id", "shop_id"],
                    "experiments",
                    &["id", "shop_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "results_aggregates",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // The seed's UNIQUE (..., COALESCE(segment, '')): the all-visitors row (segment NULL)
    // is unique too. The worker upserts with this expression as the conflict target.
    sql(
        manager,
        "CREATE UNIQUE INDEX results_aggregates_unique_segment ON results_aggregates \
         (shop_id, experiment_id, variant, coalesce(segment, ''))",
    )
    .await?;
    index(
        manager,
        "idx_results_aggregates_experiment",
        "results_aggregates",
        &["experiment_id", "variant"],
    )
    .await
}
