//! The distribution domain (seed 003, an AI order-management platform for distributors):
//! `distributors`, the tenant root, and the 17 tables its rows live in. Seed 003 names its
//! tables and what they are for but gives no columns, so every column here is designed;
//! docs/schema/distribution.md says which seed hints each one follows. Seed 003's
//! `products` is `catalog_products` here (the Shopify domain owns `products`).
//!
//! Every row carries `distributor_id` (last column). A child of a same-distributor parent
//! references `(parent_id, distributor_id)` against the parent's `(id, distributor_id)`
//! key, so a row can never hang under another distributor's parent. Where a reference only
//! points at its target and is cleared when the target goes (`ON DELETE SET NULL`), it is
//! a plain foreign key on the id: a composite key would clear `distributor_id` too.

use sea_orm_migration::{prelude::*, schema::*};

use crate::ddl::{Ddl, drop_tables, foreign_key, index, postgres_only, sql, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let d = Ddl::of(manager);
        create_distributors(manager, d).await?;
        create_user_profiles(manager, d).await?;
        create_user_invitations(manager, d).await?;
        create_customers(manager, d).await?;
        create_customer_labels(manager, d).await?;
        create_conversations(manager, d).await?;
        create_messages(manager, d).await?;
        create_product_categories(manager, d).await?;
        create_catalog_products(manager, d).await?;
        create_orders(manager, d).await?;
        create_order_products(manager, d).await?;
        create_ai_responses(manager, d).await?;
        create_pii_detections(manager, d).await?;
        create_ai_usage_metrics(manager, d).await?;
        create_webhook_endpoints(manager, d).await?;
        create_webhook_deliveries(manager, d).await?;
        create_external_integrations(manager, d).await?;
        create_data_access_audits(manager, d).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            &[
                "data_access_audits",
                "external_integrations",
                "webhook_deliveries",
                "webhook_endpoints",
                "ai_usage_metrics",
                "pii_detections",
                "ai_responses",
                "order_products",
                "orders",
                "catalog_products",
                "product_categories",
                "messages",
                "conversations",
                "customer_labels",
                "customers",
                "user_invitations",
                "user_profiles",
                "distributors",
            ],
        )
        .await
    }
}

/// The owner column of every table but `distributors`.
const OWNER: &str = "distributor_id";

/// Roles of a distributor's members, strongest first.
const ROLES: &str = "'owner', 'admin', 'member', 'viewer'";

/// The messaging channels (seed 003: "Multi-channel messaging (WhatsApp, SMS, Email)").
const CHANNELS: &str = "'whatsapp', 'sms', 'email'";

/// `name CHECK (column IN (values))`.
fn one_of(name: &'static str, column: &str, values: &str) -> (&'static str, Expr) {
    (name, Expr::cust(format!("{column} IN ({values})")))
}

/// `name CHECK (condition)`.
fn check(name: &'static str, condition: &str) -> (&'static str, Expr) {
    (name, Expr::cust(condition.to_owned()))
}

/// `distributor_id uuid NOT NULL`.
fn owner() -> ColumnDef {
    uuid(OWNER)
}

/// `table.distributor_id` -> `distributors(id)`, deleted with the distributor.
fn owner_fk(table: &'static str) -> ForeignKeyCreateStatement {
    foreign_key(
        table,
        &[OWNER],
        "distributors",
        &["id"],
        ForeignKeyAction::Cascade,
    )
}

/// `(column, distributor_id)` -> `parent(id, distributor_id)`: the parent must belong to the
/// same distributor.
fn same_distributor_fk(
    table: &'static str,
    column: &'static str,
    parent: &'static str,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    foreign_key(table, &[column, OWNER], parent, &["id", OWNER], on_delete)
}

/// A plain `column` -> `parent(id)` that is cleared when the parent goes.
fn set_null_fk(
    table: &'static str,
    column: &'static str,
    parent: &'static str,
) -> ForeignKeyCreateStatement {
    foreign_key(table, &[column], parent, &["id"], ForeignKeyAction::SetNull)
}

async fn create_distributors(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("distributors")
                .col(d.id())
                .col(string_len("name", 255))
                .col(string_len("slug", 100))
                .col(json_binary("settings").default("{}"))
                .col(boolean("ai_enabled").default(true))
                .col(decimal_len_null("ai_monthly_budget", 12, 2))
                .col(decimal_len("ai_budget_alert_threshold", 3, 2).default(Expr::cust("0.80")))
                .col(d.created_at())
                .col(d.updated_at())
                .check(check(
                    "distributors_slug_check",
                    "slug <> '' AND slug = lower(slug)",
                ))
                .check(check(
                    "distributors_ai_monthly_budget_check",
                    "ai_monthly_budget >= 0",
                ))
                .check(check(
                    "distributors_ai_budget_alert_threshold_check",
                    "ai_budget_alert_threshold > 0 AND ai_budget_alert_threshold <= 1",
                ))
                .to_owned(),
        )
        .await?;
    unique_index(manager, "distributors_slug_key", "distributors", &["slug"]).await
}

async fn create_user_profiles(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("user_profiles")
                .col(d.id())
                .col(uuid("user_id"))
                .col(string_len("role", 20).default("member"))
                .col(string_len_null("full_name", 255))
                .col(string_len_null("phone", 50))
                .col(text_null("avatar_url"))
                .col(timestamp_with_time_zone_null("last_active_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(one_of("user_profiles_role_check", "role", ROLES))
                .foreign_key(&mut foreign_key(
                    "user_profiles",
                    &["user_id"],
                    "users",
                    &["id"],
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut owner_fk("user_profiles"))
                .to_owned(),
        )
        .await?;
    // One distributor per user: this is how a user's distributor is found.
    unique_index(
        manager,
        "user_profiles_user_id_key",
        "user_profiles",
        &["user_id"],
    )
    .await?;
    index(
        manager,
        "idx_user_profiles_distributor_id",
        "user_profiles",
        &[OWNER],
    )
    .await
}

async fn create_user_invitations(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("user_invitations")
                .col(d.id())
                .col(string_len("email", 255))
                .col(string_len("role", 20).default("member"))
                .col(string_len("token_hash", 255))
                .col(uuid_null("invited_by"))
                .col(timestamp_with_time_zone("expires_at"))
                .col(timestamp_with_time_zone_null("accepted_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(one_of("user_invitations_role_check", "role", ROLES))
                .check(check(
                    "user_invitations_email_check",
                    "email = lower(email) AND email <> ''",
                ))
                .foreign_key(&mut set_null_fk("user_invitations", "invited_by", "users"))
                .foreign_key(&mut owner_fk("user_invitations"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "user_invitations_token_hash_key",
        "user_invitations",
        &["token_hash"],
    )
    .await?;
    index(
        manager,
        "idx_user_invitations_invited_by",
        "user_invitations",
        &["invited_by"],
    )
    .await?;
    // Also the distributor_id index: distributor_id leads.
    index(
        manager,
        "idx_user_invitations_distributor_id_email",
        "user_invitations",
        &[OWNER, "email"],
    )
    .await
}

async fn create_customers(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("customers")
                .col(d.id())
                .col(string_len("name", 255))
                .col(string_len_null("business_name", 255))
                .col(string_len_null("phone", 50))
                .col(string_len_null("email", 255))
                .col(string_len_null("whatsapp_id", 64))
                .col(json_binary_null("address"))
                .col(integer_null("risk_score"))
                .col(text_null("notes"))
                .col(timestamp_with_time_zone_null("last_order_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check(
                    "customers_risk_score_check",
                    "risk_score >= 0 AND risk_score <= 100",
                ))
                .foreign_key(&mut owner_fk("customers"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "customers_id_distributor_id_key",
        "customers",
        &["id", OWNER],
    )
    .await?;
    // Inbound WhatsApp messages find their customer by sender id; also the distributor_id
    // index (distributor_id leads). NULLs are distinct, so customers without one coexist.
    unique_index(
        manager,
        "customers_distributor_id_whatsapp_id_key",
        "customers",
        &[OWNER, "whatsapp_id"],
    )
    .await?;
    // Inbound SMS finds its customer by phone number.
    index(
        manager,
        "idx_customers_distributor_id_phone",
        "customers",
        &[OWNER, "phone"],
    )
    .await
}

async fn create_customer_labels(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("customer_labels")
                .col(d.id())
                .col(uuid("customer_id"))
                .col(string_len("label", 50))
                .col(string_len_null("color", 7))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check("customer_labels_label_check", "label <> ''"))
                .foreign_key(&mut same_distributor_fk(
                    "customer_labels",
                    "customer_id",
                    "customers",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut owner_fk("customer_labels"))
                .to_owned(),
        )
        .await?;
    // Also the customer_id index: customer_id leads.
    unique_index(
        manager,
        "customer_labels_customer_id_label_key",
        "customer_labels",
        &["customer_id", "label"],
    )
    .await?;
    // "Customers labelled X"; also the distributor_id index.
    index(
        manager,
        "idx_customer_labels_distributor_id_label",
        "customer_labels",
        &[OWNER, "label"],
    )
    .await
}

async fn create_conversations(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("conversations")
                .col(d.id())
                .col(uuid("customer_id"))
                .col(string_len("channel", 20))
                .col(string_len("status", 20).default("open"))
                .col(integer("unread_count").default(0))
                .col(timestamp_with_time_zone_null("last_message_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(one_of("conversations_channel_check", "channel", CHANNELS))
                .check(one_of(
                    "conversations_status_check",
                    "status",
                    "'open', 'closed', 'archived'",
                ))
                .check(check(
                    "conversations_unread_count_check",
                    "unread_count >= 0",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "conversations",
                    "customer_id",
                    "customers",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut owner_fk("conversations"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "conversations_id_distributor_id_key",
        "conversations",
        &["id", OWNER],
    )
    .await?;
    index(
        manager,
        "idx_conversations_customer_id",
        "conversations",
        &["customer_id"],
    )
    .await?;
    // The inbox: a distributor's conversations, latest activity first (seed 003's
    // "Building the Messages Page"); also the distributor_id index.
    sql(
        manager,
        "CREATE INDEX idx_conversations_distributor_id_last_message_at \
         ON conversations (distributor_id, last_message_at DESC)",
    )
    .await
}

async fn create_messages(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("messages")
                .col(d.id())
                .col(uuid("conversation_id"))
                .col(uuid_null("customer_id"))
                .col(string_len("direction", 10))
                .col(string_len("channel", 20))
                .col(text_null("body"))
                .col(json_binary("attachments").default("[]"))
                .col(string_len("status", 20).default("received"))
                .col(boolean("ai_processed").default(false))
                .col(string_len_null("external_id", 255))
                .col(timestamp_with_time_zone_null("sent_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(one_of(
                    "messages_direction_check",
                    "direction",
                    "'inbound', 'outbound'",
                ))
                .check(one_of("messages_channel_check", "channel", CHANNELS))
                .check(one_of(
                    "messages_status_check",
                    "status",
                    "'received', 'queued', 'sent', 'delivered', 'read', 'failed'",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "messages",
                    "conversation_id",
                    "conversations",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut set_null_fk("messages", "customer_id", "customers"))
                .foreign_key(&mut owner_fk("messages"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "messages_id_distributor_id_key",
        "messages",
        &["id", OWNER],
    )
    .await?;
    // A thread in order; also the conversation_id index.
    index(
        manager,
        "idx_messages_conversation_id_created_at",
        "messages",
        &["conversation_id", "created_at"],
    )
    .await?;
    index(
        manager,
        "idx_messages_customer_id",
        "messages",
        &["customer_id"],
    )
    .await?;
    // A provider retrying its webhook must not store the message twice; also the
    // distributor_id index. NULLs are distinct, so messages not yet sent coexist.
    unique_index(
        manager,
        "messages_distributor_id_channel_external_id_key",
        "messages",
        &[OWNER, "channel", "external_id"],
    )
    .await?;
    // The AI work queue (seed 003's "AI Order Processing": `WHERE ai_processed = FALSE`).
    sql(
        manager,
        "CREATE INDEX idx_messages_unprocessed ON messages (distributor_id, created_at) \
         WHERE ai_processed = false",
    )
    .await
}

async fn create_product_categories(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("product_categories")
                .col(d.id())
                .col(string_len("name", 255))
                .col(text_null("description"))
                .col(uuid_null("parent_id"))
                .col(integer("sort_order").default(0))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check("product_categories_name_check", "name <> ''"))
                .check(check(
                    "product_categories_parent_id_check",
                    "parent_id <> id",
                ))
                // Deleting a category lifts its subcategories to the top level.
                .foreign_key(&mut set_null_fk(
                    "product_categories",
                    "parent_id",
                    "product_categories",
                ))
                .foreign_key(&mut owner_fk("product_categories"))
                .to_owned(),
        )
        .await?;
    // Also the distributor_id index: distributor_id leads.
    unique_index(
        manager,
        "product_categories_distributor_id_name_key",
        "product_categories",
        &[OWNER, "name"],
    )
    .await?;
    index(
        manager,
        "idx_product_categories_parent_id",
        "product_categories",
        &["parent_id"],
    )
    .await
}

async fn create_catalog_products(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("catalog_products")
                .col(d.id())
                .col(string_len("sku", 100))
                .col(string_len("name", 255))
                .col(text_null("description"))
                .col(string_len("unit", 50).default("unit"))
                .col(decimal_len("price", 12, 2))
                .col(uuid_null("category_id"))
                .col(boolean("active").default(true))
                .col(json_binary("synonyms").default("[]"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check("catalog_products_sku_check", "sku <> ''"))
                .check(check("catalog_products_price_check", "price >= 0"))
                .foreign_key(&mut set_null_fk(
                    "catalog_products",
                    "category_id",
                    "product_categories",
                ))
                .foreign_key(&mut owner_fk("catalog_products"))
                .to_owned(),
        )
        .await?;
    // Also the distributor_id index: distributor_id leads.
    unique_index(
        manager,
        "catalog_products_distributor_id_sku_key",
        "catalog_products",
        &[OWNER, "sku"],
    )
    .await?;
    index(
        manager,
        "idx_catalog_products_category_id",
        "catalog_products",
        &["category_id"],
    )
    .await?;
    // Matching a name the AI extracted against the catalogue's synonyms (`synonyms ? 'x'`).
    postgres_only(
        manager,
        "CREATE INDEX idx_catalog_products_synonyms ON catalog_products USING GIN (synonyms)",
    )
    .await
}

async fn create_orders(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("orders")
                .col(d.id())
                .col(uuid("customer_id"))
                .col(uuid_null("conversation_id"))
                .col(string_len("order_number", 50))
                .col(string_len("status", 20).default("draft"))
                .col(decimal_len("total_amount", 12, 2).default(0))
                .col(string_len("currency", 3).default("USD"))
                .col(text_null("notes"))
                .col(string_len("source", 20).default("manual"))
                .col(date_null("delivery_date"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check("orders_order_number_check", "order_number <> ''"))
                .check(one_of(
                    "orders_status_check",
                    "status",
                    "'draft', 'pending', 'confirmed', 'processing', 'shipped', 'delivered', \
                     'cancelled'",
                ))
                .check(check("orders_total_amount_check", "total_amount >= 0"))
                .check(check(
                    "orders_currency_check",
                    "length(currency) = 3 AND currency = upper(currency)",
                ))
                .check(one_of(
                    "orders_source_check",
                    "source",
                    "'ai', 'manual', 'api', 'import'",
                ))
                // An order is a business record: a customer with orders cannot be deleted
                // (as in Shopify); NO ACTION, not RESTRICT, so that deleting the whole
                // distributor, which removes both in one statement, still works.
                .foreign_key(&mut same_distributor_fk(
                    "orders",
                    "customer_id",
                    "customers",
                    ForeignKeyAction::NoAction,
                ))
                .foreign_key(&mut set_null_fk(
                    "orders",
                    "conversation_id",
                    "conversations",
                ))
                .foreign_key(&mut owner_fk("orders"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "orders_id_distributor_id_key",
        "orders",
        &["id", OWNER],
    )
    .await?;
    // Also the distributor_id index: distributor_id leads.
    unique_index(
        manager,
        "orders_distributor_id_order_number_key",
        "orders",
        &[OWNER, "order_number"],
    )
    .await?;
    index(
        manager,
        "idx_orders_customer_id",
        "orders",
        &["customer_id"],
    )
    .await?;
    index(
        manager,
        "idx_orders_conversation_id",
        "orders",
        &["conversation_id"],
    )
    .await?;
    // The order list: a distributor's orders by status, newest first.
    sql(
        manager,
        "CREATE INDEX idx_orders_distributor_id_status_created_at \
         ON orders (distributor_id, status, created_at DESC)",
    )
    .await
}

async fn create_order_products(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("order_products")
                .col(d.id())
                .col(uuid("order_id"))
                .col(uuid_null("catalog_product_id"))
                .col(string_len("product_name", 255))
                .col(string_len_null("sku", 100))
                .col(string_len_null("unit", 50))
                .col(decimal_len("quantity", 12, 3))
                .col(decimal_len("unit_price", 12, 2))
                .col(decimal_len("line_total", 12, 2))
                .col(decimal_len_null("match_confidence", 4, 3))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check("order_products_quantity_check", "quantity > 0"))
                .check(check("order_products_unit_price_check", "unit_price >= 0"))
                .check(check("order_products_line_total_check", "line_total >= 0"))
                .check(check(
                    "order_products_match_confidence_check",
                    "match_confidence >= 0 AND match_confidence <= 1",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "order_products",
                    "order_id",
                    "orders",
                    ForeignKeyAction::Cascade,
                ))
                // The line keeps its name and price snapshot when the product goes.
                .foreign_key(&mut set_null_fk(
                    "order_products",
                    "catalog_product_id",
                    "catalog_products",
                ))
                .foreign_key(&mut owner_fk("order_products"))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_order_products_order_id",
        "order_products",
        &["order_id"],
    )
    .await?;
    index(
        manager,
        "idx_order_products_catalog_product_id",
        "order_products",
        &["catalog_product_id"],
    )
    .await?;
    index(
        manager,
        "idx_order_products_distributor_id",
        "order_products",
        &[OWNER],
    )
    .await
}

async fn create_ai_responses(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("ai_responses")
                .col(d.id())
                .col(uuid("message_id"))
                .col(string_len("model", 100))
                .col(string_len_null("intent", 50))
                .col(json_binary("extracted_data").default("{}"))
                .col(text_null("response_text"))
                .col(decimal_len_null("confidence", 4, 3))
                .col(integer("prompt_tokens").default(0))
                .col(integer("completion_tokens").default(0))
                .col(decimal_len("cost", 12, 6).default(0))
                .col(integer_null("latency_ms"))
                .col(string_len_null("feedback", 20))
                .col(uuid_null("order_id"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check(
                    "ai_responses_confidence_check",
                    "confidence >= 0 AND confidence <= 1",
                ))
                .check(check(
                    "ai_responses_tokens_check",
                    "prompt_tokens >= 0 AND completion_tokens >= 0",
                ))
                .check(check("ai_responses_cost_check", "cost >= 0"))
                .check(check("ai_responses_latency_ms_check", "latency_ms >= 0"))
                .check(one_of(
                    "ai_responses_feedback_check",
                    "feedback",
                    "'accepted', 'edited', 'rejected'",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "ai_responses",
                    "message_id",
                    "messages",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut set_null_fk("ai_responses", "order_id", "orders"))
                .foreign_key(&mut owner_fk("ai_responses"))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_ai_responses_message_id",
        "ai_responses",
        &["message_id"],
    )
    .await?;
    index(
        manager,
        "idx_ai_responses_order_id",
        "ai_responses",
        &["order_id"],
    )
    .await?;
    index(
        manager,
        "idx_ai_responses_distributor_id_created_at",
        "ai_responses",
        &[OWNER, "created_at"],
    )
    .await
}

async fn create_pii_detections(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("pii_detections")
                .col(d.id())
                .col(uuid("message_id"))
                .col(string_len("kind", 20))
                .col(json_binary("location"))
                .col(decimal_len_null("confidence", 4, 3))
                .col(boolean("redacted").default(false))
                .col(d.created_at())
                .col(owner())
                .check(one_of(
                    "pii_detections_kind_check",
                    "kind",
                    "'email', 'phone', 'address', 'credit_card', 'national_id', 'other'",
                ))
                .check(check(
                    "pii_detections_confidence_check",
                    "confidence >= 0 AND confidence <= 1",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "pii_detections",
                    "message_id",
                    "messages",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut owner_fk("pii_detections"))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_pii_detections_message_id",
        "pii_detections",
        &["message_id"],
    )
    .await?;
    index(
        manager,
        "idx_pii_detections_distributor_id_created_at",
        "pii_detections",
        &[OWNER, "created_at"],
    )
    .await
}

async fn create_ai_usage_metrics(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("ai_usage_metrics")
                .col(d.id())
                .col(date("date"))
                .col(string_len("model", 100))
                .col(string_len("feature", 50))
                .col(integer("requests").default(0))
                .col(integer("failed_requests").default(0))
                .col(big_integer("prompt_tokens").default(0))
                .col(big_integer("completion_tokens").default(0))
                .col(decimal_len("cost", 12, 6).default(0))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check(
                    "ai_usage_metrics_requests_check",
                    "requests >= 0 AND failed_requests >= 0 AND failed_requests <= requests",
                ))
                .check(check(
                    "ai_usage_metrics_tokens_check",
                    "prompt_tokens >= 0 AND completion_tokens >= 0",
                ))
                .check(check("ai_usage_metrics_cost_check", "cost >= 0"))
                .foreign_key(&mut owner_fk("ai_usage_metrics"))
                .to_owned(),
        )
        .await?;
    // One row per distributor, day, model and feature (upserted); also the distributor_id
    // index, and a month's spend against the budget is a range scan of it.
    unique_index(
        manager,
        "ai_usage_metrics_distributor_id_date_model_feature_key",
        "ai_usage_metrics",
        &[OWNER, "date", "model", "feature"],
    )
    .await
}

async fn create_webhook_endpoints(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("webhook_endpoints")
                .col(d.id())
                .col(text("url"))
                .col(text_null("description"))
                .col(blob("secret_enc"))
                .col(json_binary("events").default("[]"))
                .col(boolean("active").default(true))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check(
                    "webhook_endpoints_url_check",
                    "url LIKE 'https://%' OR url LIKE 'http://%'",
                ))
                .foreign_key(&mut owner_fk("webhook_endpoints"))
                .to_owned(),
        )
        .await?;
    unique_index(
        manager,
        "webhook_endpoints_id_distributor_id_key",
        "webhook_endpoints",
        &["id", OWNER],
    )
    .await?;
    index(
        manager,
        "idx_webhook_endpoints_distributor_id",
        "webhook_endpoints",
        &[OWNER],
    )
    .await
}

async fn create_webhook_deliveries(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("webhook_deliveries")
                .col(d.id())
                .col(uuid("endpoint_id"))
                .col(string_len("event", 100))
                .col(json_binary("payload"))
                .col(string_len("status", 20).default("pending"))
                .col(integer("attempts").default(0))
                .col(integer_null("status_code"))
                .col(text_null("last_error"))
                .col(timestamp_with_time_zone_null("next_attempt_at"))
                .col(timestamp_with_time_zone_null("delivered_at"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(one_of(
                    "webhook_deliveries_status_check",
                    "status",
                    "'pending', 'succeeded', 'failed'",
                ))
                .check(check("webhook_deliveries_attempts_check", "attempts >= 0"))
                .check(check(
                    "webhook_deliveries_status_code_check",
                    "status_code >= 100 AND status_code <= 599",
                ))
                .foreign_key(&mut same_distributor_fk(
                    "webhook_deliveries",
                    "endpoint_id",
                    "webhook_endpoints",
                    ForeignKeyAction::Cascade,
                ))
                .foreign_key(&mut owner_fk("webhook_deliveries"))
                .to_owned(),
        )
        .await?;
    // An endpoint's delivery log, newest first; also the endpoint_id index.
    sql(
        manager,
        "CREATE INDEX idx_webhook_deliveries_endpoint_id_created_at \
         ON webhook_deliveries (endpoint_id, created_at DESC)",
    )
    .await?;
    index(
        manager,
        "idx_webhook_deliveries_distributor_id",
        "webhook_deliveries",
        &[OWNER],
    )
    .await?;
    // The delivery worker's queue: pending deliveries that are due.
    sql(
        manager,
        "CREATE INDEX idx_webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) \
         WHERE status = 'pending'",
    )
    .await
}

async fn create_external_integrations(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("external_integrations")
                .col(d.id())
                .col(string_len("provider", 50))
                .col(json_binary("config").default("{}"))
                .col(blob_null("secrets_enc"))
                .col(string_len("status", 20).default("pending"))
                .col(timestamp_with_time_zone_null("last_synced_at"))
                .col(text_null("last_error"))
                .col(d.created_at())
                .col(d.updated_at())
                .col(owner())
                .check(check(
                    "external_integrations_provider_check",
                    "provider <> ''",
                ))
                .check(one_of(
                    "external_integrations_status_check",
                    "status",
                    "'pending', 'active', 'error', 'disabled'",
                ))
                .foreign_key(&mut owner_fk("external_integrations"))
                .to_owned(),
        )
        .await?;
    // One integration per provider and distributor; also the distributor_id index.
    unique_index(
        manager,
        "external_integrations_distributor_id_provider_key",
        "external_integrations",
        &[OWNER, "provider"],
    )
    .await
}

async fn create_data_access_audits(manager: &SchemaManager<'_>, d: Ddl) -> Result<(), DbErr> {
    manager
        .create_table(
            Table::create()
                .table("data_access_audits")
                .col(d.id())
                .col(uuid_null("user_id"))
                .col(string_len("action", 20))
                .col(string_len("table_name", 100))
                .col(uuid_null("record_id"))
                .col(json_binary("details").default("{}"))
                .col(string_len_null("ip_address", 45))
                .col(text_null("user_agent"))
                .col(d.created_at())
                .col(owner())
                .check(one_of(
                    "data_access_audits_action_check",
                    "action",
                    "'read', 'create', 'update', 'delete', 'export'",
                ))
                // The trail outlives the user it names.
                .foreign_key(&mut set_null_fk("data_access_audits", "user_id", "users"))
                .foreign_key(&mut owner_fk("data_access_audits"))
                .to_owned(),
        )
        .await?;
    index(
        manager,
        "idx_data_access_audits_user_id",
        "data_access_audits",
        &["user_id"],
    )
    .await?;
    // A distributor's trail, newest first; also the distributor_id index.
    sql(
        manager,
        "CREATE INDEX idx_data_access_audits_distributor_id_created_at \
         ON data_access_audits (distributor_id, created_at DESC)",
    )
    .await?;
    // "Who touched this record?"
    index(
        manager,
        "idx_data_access_audits_table_name_record_id",
        "data_access_audits",
        &["table_name", "record_id"],
    )
    .await
}
