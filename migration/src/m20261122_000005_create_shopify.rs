//! The shopify domain: the installed `shops` (seeds 000 and 004) and what each shop owns:
//! `products` (000's `products` merged with 004's `products_cache`), `content_revisions`,
//! `performance_metrics`, `ai_models`, `usage_logs` and `cache` (seed 000), the storefront
//! `events` (000 and 004; partitioned by month on PostgreSQL) and `orders_cache` (004).
//! docs/schema/shopify.md says which columns are designed here and which come from a seed.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_shops(manager, d).await?;
        create_products(manager, d).await?;
        create_content_revisions(manager, d).await?;
        create_performance_metrics(manager, d).await?;
        create_ai_models(manager, d).await?;
        create_usage_logs(manager, d).await?;
        create_cache(manager, d).await?;
        create_events(manager, d).await?;
        create_orders_cache(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Dropping the partitioned `events` drops its partitions with it.
        drop_tables(
            manager,
            &[
                "orders_cache",
                "events",
                "cache",
                "usage_logs",
                "ai_models",
                "performance_metrics",
                "content_revisions",
                "products",
                "shops",
            ],
        )
        .await?;
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS stratix_ensure_event_partitions(integer)",
        )
        .await?;
        postgres_only(
            manager,
            "DROP FUNCTION IF EXISTS stratix_drop_event_partitions(integer)",
        )
        .await
    }
}

/// A fresh shop's public ingest key: 32 random hex digits. PostgreSQL's
/// `gen_random_bytes` needs pgcrypto, which a plain database may not have.
fn new_ingest_key(d: Ddl) -> Expr {
    if d.is_postgres() {
        Expr::cust("md5(random()::text || clock_timestamp()::text)")
    } else {
        Expr::cust("(lower(hex(randomblob(16))))")
    }
}

async fn create_shops(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("shops")
                .col(d.id())
                .col(text("domain"))
                .col(blob("access_token_enc"))
                .col(text_null("scope"))
                .col(text("plan").default("starter"))
                .col(d.timestamp_now("installed_at"))
                .col(json_binary("settings").default("{}"))
                .col(timestamp_with_time_zone_null("uninstalled_at"))
                .col(text("ingest_key").default(new_ingest_key(d)))
                .col(d.created_at())
                .col(d.updated_at())
                .check((
                    "shops_domain_check",
                    Expr::cust("domain = lower(domain) AND domain <> ''"),
                ))
                .to_owned(),
        )
        .await?;
    unique_index(manager, "shops_domain_key", "shops", &["domain"]).await?;
    unique_index(manager, "shops_ingest_key_key", "shops", &["ingest_key"]).await?;
    index(manager, "idx_shops_domain", "shops", &["domain"]).await?;
    sql(
        manager,
        "CREATE INDEX idx_shops_installed ON shops (installed_at) WHERE uninstalled_at IS NULL",
    )
    .await
}

async fn create_products(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("products")
                .col(d.id())
                .col(text("shopify_id"))
                .col(text("handle"))
                .col(text("title"))
                .col(text_null("description"))
                .col(json_binary("data").default("{}"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .foreign_key(&mut foreign_key(
                    "products",
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
        "products_shop_id_shopify_id_key",
        "products",
        &["shop_id", "shopify_id"],
    )
    .await?;
    unique_index(
        manager,
        "products_id_shop_id_key",
        "products",
        &["id", "shop_id"],
    )
    .await?;
    // Seed 004's `products_cache` indexes, renamed with the table; seed 000's
    // `products_shop_id_idx` is the same index as `idx_products_shop`.
    index(manager, "idx_products_shop", "products", &["shop_id"]).await?;
    index(
        manager,
        "idx_products_shop_updated",
        "products",
        &["shop_id", "updated_at"],
    )
    .await
}

async fn create_content_revisions(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("content_revisions")
                .col(d.id())
                .col(uuid("product_id"))
                .col(text("content"))
                .col(integer("version"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check((
                    "content_revisions_version_check",
                    Expr::cust("version >= 1"),
                ))
                .foreign_key(&mut foreign_key(
                    "content_revisions",
                    &["product_id", "shop_id"],
                    "products",
                    &["id", "shop_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "content_revisions",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // Versions 1, 2, 3... per product; concurrent writers of the same next version
    // collide here, and the loser retries. It also serves "latest N per product".
    unique_index(
        manager,
        "content_revisions_product_id_version_key",
        "content_revisions",
        &["product_id", "version"],
    )
    .await?;
    index(
        manager,
        "content_revisions_product_id_idx",
        "content_revisions",
        &["product_id"],
    )
    .await?;
    index(
        manager,
        "idx_content_revisions_shop_id",
        "content_revisions",
        &["shop_id"],
    )
    .await
}

async fn create_performance_metrics(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("performance_metrics")
                .col(d.id())
                .col(uuid("product_id"))
                .col(text("metric_type"))
                .col(decimal_len("value", 20, 6))
                .col(d.created_at())
                .col(uuid("shop_id"))
                .foreign_key(&mut foreign_key(
                    "performance_metrics",
                    &["product_id", "shop_id"],
                    "products",
                    &["id", "shop_id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut foreign_key(
                    "performance_metrics",
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
        "performance_metrics_product_id_idx",
        "performance_metrics",
        &["product_id"],
    )
    .await?;
    index(
        manager,
        "idx_performance_metrics_shop_id",
        "performance_metrics",
        &["shop_id"],
    )
    .await
}

async fn create_ai_models(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("ai_models")
                .col(d.id())
                .col(text("name"))
                .col(text("version"))
                .col(json_binary("config").default("{}"))
                .col(d.created_at())
                .col(d.updated_at())
                // NULL: a global model, readable by every shop.
                .col(uuid_null("shop_id"))
                .foreign_key(&mut foreign_key(
                    "ai_models",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // One row per name and version, per shop and among the global models; a shop may
    // override a global model under the same name and version.
    unique_index(
        manager,
        "ai_models_shop_id_name_version_key",
        "ai_models",
        &["shop_id", "name", "version"],
    )
    .await?;
    sql(
        manager,
        "CREATE UNIQUE INDEX ai_models_global_name_version_key ON ai_models (name, version) \
         WHERE shop_id IS NULL",
    )
    .await
}

async fn create_usage_logs(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("usage_logs")
                .col(d.id())
                .col(text("endpoint"))
                .col(text("method"))
                .col(integer("status_code"))
                .col(integer("duration_ms"))
                .col(d.created_at())
                .col(uuid("shop_id"))
                .check((
                    "usage_logs_status_code_check",
                    Expr::cust("status_code BETWEEN 100 AND 599"),
                ))
                .check((
                    "usage_logs_duration_ms_check",
                    Expr::cust("duration_ms >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "usage_logs",
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
        "usage_logs_shop_id_idx",
        "usage_logs",
        &["shop_id"],
    )
    .await?;
    // Per-shop request counts over a time window (rate limits, usage pages).
    index(
        manager,
        "idx_usage_logs_shop_created",
        "usage_logs",
        &["shop_id", "created_at"],
    )
    .await
}

async fn create_cache(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("cache")
                .col(d.id())
                .col(text("key"))
                .col(json_binary("value"))
                .col(text("type"))
                .col(timestamp_with_time_zone_null("expires_at"))
                .col(d.created_at())
                .col(d.updated_at())
                // NULL: an entry the service keeps for itself, not for one shop.
                .col(uuid_null("shop_id"))
                .foreign_key(&mut foreign_key(
                    "cache",
                    &["shop_id"],
                    "shops",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .to_owned(),
        )
        .await?;
    // A key is unique per shop; NULLs are distinct in a unique index, so the global
    // entries need their own partial index.
    unique_index(
        manager,
        "cache_shop_id_key_key",
        "cache",
        &["shop_id", "key"],
    )
    .await?;
    sql(
        manager,
        "CREATE UNIQUE INDEX cache_global_key_key ON cache (key) WHERE shop_id IS NULL",
    )
    .await?;
    // The purge of expired entries.
    sql(
        manager,
        "CREATE INDEX idx_cache_expires_at ON cache (expires_at) WHERE expires_at IS NOT NULL",
    )
    .await
}

/// `events` on PostgreSQL: partitioned by month on `ts`, so retention drops whole months.
/// The primary key must hold the partition key, hence `(id, ts)`.
const CREATE_EVENTS_PARTITIONED: &str = "
CREATE TABLE events (
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    anon_id       text        NOT NULL,
    session_id    text        NOT NULL,
    event_type    text        NOT NULL,
    ts            timestamptz NOT NULL DEFAULT now(),
    props         jsonb       NOT NULL DEFAULT '{}',
    product_id    text,
    experiment_id text,
    variant       text,
    shop_id       uuid        NOT NULL,
    PRIMARY KEY (id, ts),
    CONSTRAINT fk_events_shop_id FOREIGN KEY (shop_id) REFERENCES shops (id) ON DELETE CASCADE
) PARTITION BY RANGE (ts)";

/// Rows whose month has no partition land here instead of failing the insert. RLS on a
/// partition without policies refuses direct access to it: reads and writes go through
/// `events`, whose policies apply.
const CREATE_EVENTS_DEFAULT: &str = "
CREATE TABLE events_default PARTITION OF events DEFAULT;
ALTER TABLE events_default ENABLE ROW LEVEL SECURITY";

/// Makes `events_YYYY_MM` (UTC months) for this month through `months_ahead` months ahead
/// where missing, and returns how many it made. Rows of such a month already in
/// `events_default` move into the new partition (PostgreSQL refuses a new partition whose
/// range the default partition still holds).
const CREATE_ENSURE_PARTITIONS: &str = r#"
CREATE OR REPLACE FUNCTION stratix_ensure_event_partitions(months_ahead integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    this_month timestamp := date_trunc('month', now() AT TIME ZONE 'UTC');
    lo timestamptz;
    hi timestamptz;
    part text;
    made integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 THEN
        RAISE EXCEPTION 'months_ahead must be 0 or more, not %', months_ahead;
    END IF;
    -- Two callers at once (say, two instances starting) take turns.
    PERFORM pg_advisory_xact_lock(hashtext('stratix_event_partitions'));
    FOR i IN 0..months_ahead LOOP
        lo := (this_month + make_interval(months => i)) AT TIME ZONE 'UTC';
        hi := (this_month + make_interval(months => i + 1)) AT TIME ZONE 'UTC';
        part := 'events_' || to_char(this_month + make_interval(months => i), 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('%I.%I', current_schema(), part)) IS NOT NULL;
        -- Writers to the default partition wait until the new partition is in place.
        LOCK TABLE events_default IN SHARE ROW EXCLUSIVE MODE;
        IF EXISTS (SELECT 1 FROM events_default WHERE ts >= lo AND ts < hi) THEN
            EXECUTE format('CREATE TABLE %I (LIKE events INCLUDING DEFAULTS)', part);
            EXECUTE format(
                'WITH moved AS (DELETE FROM events_default WHERE ts >= $1 AND ts < $2 RETURNING *) '
                'INSERT INTO %I SELECT * FROM moved', part)
                USING lo, hi;
            EXECUTE format('ALTER TABLE events ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                part, lo, hi);
        ELSE
            EXECUTE format('CREATE TABLE %I PARTITION OF events FOR VALUES FROM (%L) TO (%L)',
                part, lo, hi);
        END IF;
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', part);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$fn$"#;

/// Retention: drops the monthly partitions whose every row is older than `keep_months`
/// months (the month's end is at or before `now() - keep_months months`), and returns how
/// many it dropped. `events_default` is never dropped.
pub(crate) const CREATE_DROP_PARTITIONS: &str = r#"
CREATE OR REPLACE FUNCTION stratix_drop_event_partitions(keep_months integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
    cutoff timestamptz;
    part record;
    month_end timestamptz;
    dropped integer := 0;
BEGIN
    IF keep_months IS NULL OR keep_months < 0 THEN
        RAISE EXCEPTION 'keep_months must be 0 or more, not %', keep_months;
    END IF;
    cutoff := now() - make_interval(months => keep_months);
    PERFORM pg_advisory_xact_lock(hashtext('stratix_event_partitions'));
    FOR part IN
        SELECT c.relname::text AS name
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'events'::regclass
          AND c.relname ~ '^events_[0-9]{4}_[0-9]{2}$'
        ORDER BY c.relname
    LOOP
        month_end := (make_date(substr(part.name, 8, 4)::integer, substr(part.name, 13, 2)::integer, 1)
                      + interval '1 month')::timestamp AT TIME ZONE 'UTC';
        IF month_end <= cutoff THEN
            EXECUTE format('DROP TABLE %I', part.name);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$fn$"#;

async fn create_events(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    if d.is_postgres() {
        sql(manager, CREATE_EVENTS_PARTITIONED).await?;
        sql(manager, CREATE_EVENTS_DEFAULT).await?;
        sql(manager, CREATE_ENSURE_PARTITIONS).await?;
        sql(manager, CREATE_DROP_PARTITIONS).await?;
        // This month and the next; `stratix partitions` keeps it so.
        sql(manager, "SELECT stratix_ensure_event_partitions(1)").await?;
    } else {
        manager
            .create_table(
                Table::create()
                    .table("events")
                    .col(d.id())
                    .col(text("anon_id"))
                    .col(text("session_id"))
                    .col(text("event_type"))
                    .col(d.timestamp_now("ts"))
                    .col(json_binary("props").default("{}"))
                    .col(text_null("product_id"))
                    .col(text_null("experiment_id"))
                    .col(text_null("variant"))
                    .col(uuid("shop_id"))
                    .foreign_key(&mut foreign_key(
                        "events",
                        &["shop_id"],
                        "shops",
                        &["id"],
                        ForeignKeyAction::Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
    }
    // Seed 004's indexes; on PostgreSQL each partition gets its own copy. They also serve
    // seed 000's `events_shop_id_idx` (shop_id leads), which is not made separately on
    // the busiest table.
    index(manager, "idx_events_shop_ts", "events", &["shop_id", "ts"]).await?;
    index(
        manager,
        "idx_events_shop_type_ts",
        "events",
        &["shop_id", "event_type", "ts"],
    )
    .await?;
    sql(
        manager,
        "CREATE INDEX idx_events_experiment ON events (shop_id, experiment_id, variant, ts) \
         WHERE experiment_id IS NOT NULL",
    )
    .await
}

async fn create_orders_cache(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("orders_cache")
                .col(d.id())
                .col(text("order_id"))
                .col(decimal_len("total", 14, 2))
                .col(decimal_len_null("subtotal", 14, 2))
                .col(integer("line_count").default(0))
                .col(json_binary_null("attribution"))
                // The order's own creation time in Shopify, so no default.
                .col(timestamp_with_time_zone("created_at"))
                .col(d.updated_at())
                .col(uuid("shop_id"))
                .check((
                    "orders_cache_amounts_check",
                    Expr::cust("total >= 0 AND (subtotal IS NULL OR subtotal >= 0)"),
                ))
                .check((
                    "orders_cache_line_count_check",
                    Expr::cust("line_count >= 0"),
                ))
                .foreign_key(&mut foreign_key(
                    "orders_cache",
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
        "orders_cache_shop_id_order_id_key",
        "orders_cache",
        &["shop_id", "order_id"],
    )
    .await?;
    index(
        manager,
        "idx_orders_cache_shop",
        "orders_cache",
        &["shop_id"],
    )
    .await?;
    index(
        manager,
        "idx_orders_cache_shop_created",
        "orders_cache",
        &["shop_id", "created_at"],
    )
    .await
}
