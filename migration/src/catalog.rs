//! The table catalog: every table, who owns its rows, and whether the database keeps its
//! `updated_at`. The triggers, the row-level security policies, `stratix check` and the
//! tests all read this one list, so a table added here is covered by each of them.

/// The kind of principal that owns a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tenant {
    /// A user (`users.id`); the user JWT's `sub`.
    User,
    /// A Shopify shop (`shops.id`); the Shopify session token's shop.
    Shop,
    /// A distributor (`distributors.id`); found through the user's `user_profiles` row.
    Distributor,
}

/// One table of the schema.
#[derive(Clone, Copy, Debug)]
pub struct TableSpec {
    /// The table's name, as in the seeds.
    pub name: &'static str,
    /// The domain it belongs to (the entity module that holds it).
    pub domain: &'static str,
    /// Who owns its rows.
    pub tenant: Tenant,
    /// The column holding the owner's id (`id` on the tenant roots themselves).
    pub owner_column: &'static str,
    /// Whether the owner column may be null (a shared row, readable by every tenant of
    /// that kind where the table says so, writable only by `service_role`).
    pub shared_when_null: bool,
    /// Whether the table has an `updated_at` that the database maintains.
    pub updated_at: bool,
}

const fn table(
    name: &'static str,
    domain: &'static str,
    tenant: Tenant,
    owner_column: &'static str,
    updated_at: bool,
) -> TableSpec {
    TableSpec {
        name,
        domain,
        tenant,
        owner_column,
        shared_when_null: false,
        updated_at,
    }
}

const fn user(name: &'static str, domain: &'static str, updated_at: bool) -> TableSpec {
    table(name, domain, Tenant::User, "user_id", updated_at)
}

const fn shop(name: &'static str, domain: &'static str, updated_at: bool) -> TableSpec {
    table(name, domain, Tenant::Shop, "shop_id", updated_at)
}

const fn distributor(name: &'static str, updated_at: bool) -> TableSpec {
    table(
        name,
        "distribution",
        Tenant::Distributor,
        "distributor_id",
        updated_at,
    )
}

const fn shared(spec: TableSpec) -> TableSpec {
    TableSpec {
        shared_when_null: true,
        ..spec
    }
}

/// Every table, in creation order (parents before children).
pub const TABLES: &[TableSpec] = &[
    // accounts
    table("users", "accounts", Tenant::User, "id", true),
    user("profiles", "accounts", true),
    user("api_keys", "accounts", true),
    user("notifications", "accounts", true),
    user("notification_preferences", "accounts", true),
    user("activity_logs", "accounts", false),
    user("usage_metrics", "accounts", true),
    // billing
    user("credit_accounts", "billing", true),
    user("credit_transactions", "billing", false),
    user("payments", "billing", true),
    // crawling
    user("projects", "crawling", true),
    user("crawl_jobs", "crawling", true),
    user("images", "crawling", true),
    // studio
    user("ai_clones", "studio", true),
    user("ai_tasks", "studio", true),
    // shopify
    table("shops", "shopify", Tenant::Shop, "id", true),
    shop("products", "shopify", true),
    shop("content_revisions", "shopify", true),
    shop("performance_metrics", "shopify", false),
    shared(shop("ai_models", "shopify", true)),
    shop("usage_logs", "shopify", false),
    shop("cache", "shopify", true),
    shop("events", "shopify", false),
    shop("orders_cache", "shopify", true),
    // experiments
    shop("recommendations", "experiments", true),
    shop("patches", "experiments", true),
    shop("experiments", "experiments", true),
    shop("assignments", "experiments", false),
    shop("results_aggregates", "experiments", true),
    // distribution
    table(
        "distributors",
        "distribution",
        Tenant::Distributor,
        "id",
        true,
    ),
    distributor("user_profiles", true),
    distributor("user_invitations", true),
    distributor("customers", true),
    distributor("customer_labels", true),
    distributor("conversations", true),
    distributor("messages", true),
    distributor("ai_responses", true),
    distributor("catalog_products", true),
    distributor("product_categories", true),
    distributor("orders", true),
    distributor("order_products", true),
    distributor("ai_usage_metrics", true),
    distributor("webhook_endpoints", true),
    distributor("webhook_deliveries", true),
    distributor("external_integrations", true),
    distributor("data_access_audits", false),
    distributor("pii_detections", false),
];

/// Looks a table up by name.
pub fn find(name: &str) -> Option<&'static TableSpec> {
    TABLES.iter().find(|t| t.name == name)
}

/// The trigger that keeps `table.updated_at` current.
pub fn updated_at_trigger(table: &str) -> String {
    format!("{table}_updated_at")
}

/// The trigger on `users` that makes a new user's profile, credits and preferences.
pub const NEW_USER_TRIGGER: &str = "on_auth_user_created";

/// Indexes the service relies on, on both backends: the seeds' named indexes, the uniques
/// that keep data consistent, and the partial and expression indexes.
pub const CRITICAL_INDEXES: &[&str] = &[
    // accounts, billing, crawling, studio
    "idx_users_email",
    "idx_users_created_at",
    "profiles_user_id_key",
    "api_keys_key_hash_key",
    "idx_api_keys_user_id",
    "idx_notifications_user_id",
    "idx_notifications_user_unread",
    "notification_preferences_user_id_key",
    "idx_logs_type",
    "idx_logs_entity_id",
    "idx_logs_level",
    "idx_logs_created_at",
    "idx_logs_user_id",
    "usage_metrics_user_id_date_metric_key",
    "credit_accounts_user_id_key",
    "credit_accounts_id_user_id_key",
    "idx_credit_transactions_credit_account_id",
    "idx_credit_transactions_user_id_created_at",
    "credit_transactions_signup_bonus_key",
    "credit_transactions_purchase_reference_key",
    "idx_payments_order_id",
    "idx_payments_status",
    "idx_payments_user_id",
    "idx_payments_created_at",
    "idx_payments_amount",
    "projects_id_user_id_key",
    "idx_projects_user_id",
    "crawl_jobs_id_user_id_key",
    "idx_crawl_jobs_project_id",
    "idx_crawl_jobs_user_id",
    "idx_crawl_jobs_status",
    "idx_crawl_jobs_created_at",
    "idx_crawl_jobs_active",
    "idx_images_crawl_job_id",
    "idx_images_user_id",
    "idx_images_content_hash",
    "idx_images_created_at",
    "ai_clones_id_user_id_key",
    "idx_clones_user_id",
    "idx_clones_status",
    "idx_clones_created_at",
    "idx_tasks_clone_id",
    "idx_tasks_user_id",
    "idx_tasks_status",
    "idx_tasks_priority",
    "idx_tasks_created_at",
    "idx_tasks_completed_at",
    "idx_active_tasks",
    "idx_tasks_clone_status",
    // shopify, experiments
    "shops_domain_key",
    "shops_ingest_key_key",
    "idx_shops_domain",
    "idx_shops_installed",
    "products_shop_id_shopify_id_key",
    "products_id_shop_id_key",
    "idx_products_shop",
    "idx_products_shop_updated",
    "content_revisions_product_id_version_key",
    "content_revisions_product_id_idx",
    "idx_content_revisions_shop_id",
    "performance_metrics_product_id_idx",
    "idx_performance_metrics_shop_id",
    "ai_models_shop_id_name_version_key",
    "ai_models_global_name_version_key",
    "usage_logs_shop_id_idx",
    "idx_usage_logs_shop_created",
    "cache_shop_id_key_key",
    "cache_global_key_key",
    "idx_cache_expires_at",
    "idx_events_shop_ts",
    "idx_events_shop_type_ts",
    "idx_events_experiment",
    "orders_cache_shop_id_order_id_key",
    "idx_orders_cache_shop",
    "idx_orders_cache_shop_created",
    "idx_recommendations_shop_status",
    "idx_recommendations_shop_entity",
    "idx_recommendations_shop_created",
    "patches_shop_id_applied_to_version_key",
    "idx_patches_shop",
    "idx_patches_applied_to",
    "idx_patches_recommendation_id",
    "experiments_id_shop_id_key",
    "idx_experiments_shop",
    "idx_experiments_shop_status",
    "idx_experiments_shop_started",
    "idx_assignments_lookup",
    "idx_assignments_experiment",
    "results_aggregates_unique_segment",
    "idx_results_aggregates_experiment",
    // distribution
    "customers_id_distributor_id_key",
    "conversations_id_distributor_id_key",
    "messages_id_distributor_id_key",
    "orders_id_distributor_id_key",
    "webhook_endpoints_id_distributor_id_key",
    "distributors_slug_key",
    "user_profiles_user_id_key",
    "user_invitations_token_hash_key",
    "customer_labels_customer_id_label_key",
    "customers_distributor_id_whatsapp_id_key",
    "messages_distributor_id_channel_external_id_key",
    "catalog_products_distributor_id_sku_key",
    "product_categories_distributor_id_name_key",
    "orders_distributor_id_order_number_key",
    "ai_usage_metrics_distributor_id_date_model_feature_key",
    "external_integrations_distributor_id_provider_key",
    "idx_messages_unprocessed",
    "idx_webhook_deliveries_pending",
    "idx_conversations_distributor_id_last_message_at",
];

/// Indexes that exist only on PostgreSQL (GIN over JSON).
pub const POSTGRES_INDEXES: &[&str] = &[
    "idx_logs_details",
    "idx_payments_metadata",
    "idx_images_metadata",
    "idx_clones_config",
    "idx_tasks_input",
    "idx_tasks_output",
    "idx_catalog_products_synonyms",
];
