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

/// A member's role in a distributor, weakest first: each may do what the ones before it
/// may (seed 003's `user_profiles.role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the distributor's rows, writes none.
    Viewer,
    /// Also writes customers, conversations, messages and orders.
    Member,
    /// Also manages the catalog, webhooks, integrations and invitations.
    Admin,
    /// Also manages members, roles, the AI budget and the distributor itself.
    Owner,
}

impl Role {
    /// Every role, weakest first.
    pub const ALL: [Self; 4] = [Self::Viewer, Self::Member, Self::Admin, Self::Owner];

    /// The role as stored.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// The role stored as `text`.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
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
    /// The GraphQL object type, where the singular of the table name will not do.
    pub type_name: Option<&'static str>,
    /// Columns that hold secrets (hashes, ciphertexts): stored, never served, never set
    /// by a client.
    pub secrets: &'static [&'static str],
    /// The column the typed subscription feeds filter on (a task's clone, a job's
    /// project, ...), carried by every change event of the table.
    pub feed_key: Option<&'static str>,
    /// How the API may write the table.
    pub writes: Writes,
    /// For a distributor's table, the least role that writes it (generated writes and
    /// workflows alike).
    pub write_role: Role,
    /// A column referring to the same table that must keep its rows a tree (a category's
    /// parent): no write may make a row its own ancestor.
    pub tree: Option<&'static str>,
    /// Columns served in full only to members of a role (a message body with PII).
    pub masked: &'static [Masked],
    /// A timestamp past which a row is gone: invisible at once to reads and writes, and
    /// deleted in the background (cache entries' `expires_at`; null: never expires).
    pub expires: Option<&'static str>,
    /// Whether its changes go to the change feed (subscriptions). A stream written by the
    /// thousand rows a second (storefront events) is read counted instead.
    pub fed: bool,
}

/// A column whose full value only members of at least `full_to` read (and `service_role`);
/// everyone else reads the `redacted` column's value in its place. Neither filters, sorts
/// nor groups (its redacted twin does), so its value cannot be probed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Masked {
    /// The column.
    pub column: &'static str,
    /// The column served in its place.
    pub redacted: &'static str,
    /// The least role that reads it in full.
    pub full_to: Role,
}

/// The generated mutations a table has, and which columns clients set through them.
///
/// The server always sets the `id`, the timestamps, the secrets and (for everyone but
/// `service_role`) the owner key; `server_set` names the table's other columns that only
/// a workflow may change. A table with no generated mutations is written by workflows
/// alone (the credit ledger, content versions, deliveries, audits).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Writes {
    /// `<object>Create(input:)`.
    pub create: bool,
    /// `<object>Update(id:, input:)`.
    pub update: bool,
    /// `<object>Delete(id:)`.
    pub delete: bool,
    /// The natural key `<objects>Upsert(inputs:)` matches rows on (a unique constraint
    /// that includes the owner key); empty: no upsert.
    pub upsert_key: &'static [&'static str],
    /// Columns clients never set: a workflow's (balances, counters, states with rules).
    pub server_set: &'static [&'static str],
    /// Columns set on create and never changed (parent references, natural keys).
    pub fixed: &'static [&'static str],
    /// Timestamps the client gives rather than the server (an order's time at Shopify).
    pub given: &'static [&'static str],
}

impl Writes {
    /// No generated mutations: rows are made and changed by workflows only.
    pub const WORKFLOW_ONLY: Self = Self {
        create: false,
        update: false,
        delete: false,
        upsert_key: &[],
        server_set: &[],
        fixed: &[],
        given: &[],
    };

    /// Create, update and delete.
    pub const CRUD: Self = Self {
        create: true,
        update: true,
        delete: true,
        ..Self::WORKFLOW_ONLY
    };

    /// Update only: rows made by the database or a workflow (one per user, say).
    pub const UPDATE: Self = Self {
        update: true,
        ..Self::WORKFLOW_ONLY
    };

    /// These writes, with `columns` set on create only.
    pub const fn fixed(self, columns: &'static [&'static str]) -> Self {
        Self {
            fixed: columns,
            ..self
        }
    }

    /// These writes, with `columns` left to workflows.
    pub const fn server_set(self, columns: &'static [&'static str]) -> Self {
        Self {
            server_set: columns,
            ..self
        }
    }

    /// These writes, with the timestamps `columns` given by the client.
    pub const fn given(self, columns: &'static [&'static str]) -> Self {
        Self {
            given: columns,
            ..self
        }
    }

    /// These writes, plus a bulk upsert on the natural key `columns`.
    pub const fn upsert_on(self, columns: &'static [&'static str]) -> Self {
        Self {
            upsert_key: columns,
            ..self
        }
    }

    /// Whether the table has any generated mutation.
    pub const fn any(&self) -> bool {
        self.create || self.update || self.delete || !self.upsert_key.is_empty()
    }
}

impl TableSpec {
    /// The table with these generated writes.
    pub const fn writes(self, writes: Writes) -> Self {
        Self { writes, ..self }
    }

    /// The table with these secret columns.
    pub const fn secrets(self, secrets: &'static [&'static str]) -> Self {
        Self { secrets, ..self }
    }

    /// Its secret columns that hold AES-256-GCM ciphertexts (named `*_enc`), which
    /// `stratix keys rotate` re-encrypts; the others are hashes and leases.
    pub fn encrypted(&self) -> impl Iterator<Item = &'static str> {
        self.secrets.iter().copied().filter(|c| c.ends_with("_enc"))
    }

    /// The table with this feed key column.
    pub const fn feed_key(self, column: &'static str) -> Self {
        Self {
            feed_key: Some(column),
            ..self
        }
    }

    /// The table, written by members of at least `role` (distributor tables).
    pub const fn role(self, role: Role) -> Self {
        Self {
            write_role: role,
            ..self
        }
    }

    /// The table with these masked columns.
    pub const fn masked(self, masked: &'static [Masked]) -> Self {
        Self { masked, ..self }
    }

    /// The table, its changes kept out of the change feed.
    pub const fn unfed(self) -> Self {
        Self { fed: false, ..self }
    }

    /// The table whose rows expire at the time in `column`.
    pub const fn expires(self, column: &'static str) -> Self {
        Self {
            expires: Some(column),
            ..self
        }
    }

    /// The table whose rows form a tree through `column`.
    pub const fn tree(self, column: &'static str) -> Self {
        Self {
            tree: Some(column),
            ..self
        }
    }

    /// The table with this GraphQL type name.
    pub const fn type_name(self, name: &'static str) -> Self {
        Self {
            type_name: Some(name),
            ..self
        }
    }
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
        type_name: None,
        secrets: &[],
        feed_key: None,
        writes: Writes::WORKFLOW_ONLY,
        write_role: Role::Member,
        tree: None,
        masked: &[],
        expires: None,
        fed: true,
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

/// Every table, in creation order (parents before children). New tables go at the end:
/// the migrations that secure the first tables take exactly the first
/// [`FIRST_TABLES`] entries.
pub const TABLES: &[TableSpec] = &[
    // accounts
    table("users", "accounts", Tenant::User, "id", true).secrets(&["password_hash"]),
    user("profiles", "accounts", true).writes(Writes::UPDATE),
    user("api_keys", "accounts", true).secrets(&["key_hash"]),
    user("notifications", "accounts", true).writes(Writes::CRUD),
    user("notification_preferences", "accounts", true).writes(Writes::UPDATE),
    user("activity_logs", "accounts", false),
    user("usage_metrics", "accounts", true),
    // billing
    user("credit_accounts", "billing", true),
    user("credit_transactions", "billing", false),
    user("payments", "billing", true),
    // crawling
    user("projects", "crawling", true).writes(Writes::CRUD),
    // Made by `crawlJobCreate`, which reserves credits; run by workers. Only the name is
    // the user's to change.
    user("crawl_jobs", "crawling", true)
        .feed_key("project_id")
        .writes(Writes::UPDATE.server_set(&[
            "keywords",
            "max_images",
            "config",
            "status",
            "progress",
            "total_images",
            "downloaded_images",
            "valid_images",
            "total_chunks",
            "active_chunks",
            "completed_chunks",
            "failed_chunks",
            "credits_reserved",
            "credits_used",
            "error_message",
            "started_at",
            "completed_at",
        ])),
    user("images", "crawling", true).writes(Writes::CRUD.fixed(&["crawl_job_id"])),
    // studio
    user("ai_clones", "studio", true).writes(Writes::CRUD),
    user("ai_tasks", "studio", true)
        .feed_key("clone_id")
        .secrets(&["lease_id"])
        .writes(Writes::CRUD.fixed(&["clone_id"]).server_set(&[
            "status",
            "task_output",
            "error_message",
            "completed_at",
            "lease_expires_at",
            "attempts",
        ])),
    // shopify
    table("shops", "shopify", Tenant::Shop, "id", true).secrets(&["access_token_enc"]),
    shop("products", "shopify", true).writes(
        Writes::CRUD
            .fixed(&["shopify_id"])
            .upsert_on(&["shop_id", "shopify_id"]),
    ),
    shop("content_revisions", "shopify", true),
    shop("performance_metrics", "shopify", false).writes(Writes::CRUD.fixed(&["product_id"])),
    shared(shop("ai_models", "shopify", true)).writes(Writes::CRUD),
    // Written in batches off the request path, read by count; no one follows it row by row.
    shop("usage_logs", "shopify", false).unfed(),
    // Setting a key is its upsert; an expired entry is gone at once.
    shop("cache", "shopify", true)
        .type_name("CacheEntry")
        .expires("expires_at")
        .writes(Writes::CRUD.upsert_on(&["shop_id", "key"])),
    // Counted into experiment results rather than fed to subscribers, one by one.
    shop("events", "shopify", false).unfed(),
    shop("orders_cache", "shopify", true)
        .type_name("CachedOrder")
        .writes(
            Writes::CRUD
                .fixed(&["order_id"])
                .given(&["created_at"])
                .upsert_on(&["shop_id", "order_id"]),
        ),
    // experiments
    // States move through the experiments workflows only.
    shop("recommendations", "experiments", true).writes(Writes::CRUD.server_set(&["status"])),
    shop("patches", "experiments", true),
    shop("experiments", "experiments", true).writes(Writes::CRUD.server_set(&[
        "status",
        "started_at",
        "ended_at",
    ])),
    // One a storefront visitor: followed through the results, not row by row.
    shop("assignments", "experiments", false).unfed(),
    shop("results_aggregates", "experiments", true).feed_key("experiment_id"),
    // distribution
    // Made by `distributorCreate`; its settings (the AI budget among them) and its
    // deletion are the owners'.
    table(
        "distributors",
        "distribution",
        Tenant::Distributor,
        "id",
        true,
    )
    .role(Role::Owner)
    .writes(Writes {
        delete: true,
        ..Writes::UPDATE
    }),
    // Made by `distributorCreate` and `userInvitationAccept`; owners change roles and
    // remove members.
    distributor("user_profiles", true)
        .feed_key("user_id")
        .role(Role::Owner)
        .writes(Writes {
            delete: true,
            ..Writes::UPDATE
                .fixed(&["user_id"])
                .server_set(&["last_active_at"])
        }),
    // Made by `userInvitationCreate`; deleting one revokes it.
    distributor("user_invitations", true)
        .secrets(&["token_hash"])
        .role(Role::Admin)
        .writes(Writes {
            delete: true,
            ..Writes::WORKFLOW_ONLY
        }),
    distributor("customers", true).writes(Writes::CRUD.server_set(&["last_order_at"])),
    distributor("customer_labels", true).writes(Writes::CRUD.fixed(&["customer_id"])),
    distributor("conversations", true).writes(
        Writes::CRUD
            .fixed(&["customer_id"])
            .server_set(&["unread_count", "last_message_at"]),
    ),
    // Viewers and members read bodies with their PII masked (`Masked`).
    distributor("messages", true)
        .feed_key("conversation_id")
        .masked(&[Masked {
            column: "body",
            redacted: "body_redacted",
            full_to: Role::Admin,
        }])
        // Made by `messageReceive` and `messageSend` (which find the PII): a body, once
        // recorded, is history.
        .writes(Writes {
            delete: true,
            ..Writes::UPDATE
                .fixed(&["conversation_id"])
                .server_set(&["body", "body_redacted"])
        }),
    distributor("ai_responses", true),
    distributor("catalog_products", true)
        .role(Role::Admin)
        .writes(Writes::CRUD.upsert_on(&["distributor_id", "sku"])),
    distributor("product_categories", true)
        .role(Role::Admin)
        .tree("parent_id")
        .writes(Writes::CRUD.upsert_on(&["distributor_id", "name"])),
    // The status moves only through `orderUpdateStatus` (its state machine).
    distributor("orders", true).writes(
        Writes::CRUD
            .fixed(&["customer_id"])
            .server_set(&["status"])
            .upsert_on(&["distributor_id", "order_number"]),
    ),
    distributor("order_products", true).writes(Writes::CRUD.fixed(&["order_id"])),
    distributor("ai_usage_metrics", true),
    distributor("webhook_endpoints", true)
        .secrets(&["secret_enc"])
        .role(Role::Admin),
    distributor("webhook_deliveries", true)
        .secrets(&["lease_id"])
        .role(Role::Admin),
    distributor("external_integrations", true)
        .secrets(&["secrets_enc", "api_key_hash"])
        .role(Role::Admin)
        .writes(Writes::CRUD.upsert_on(&["distributor_id", "provider"])),
    distributor("data_access_audits", false),
    distributor("pii_detections", false),
    // Added after the first schema.
    user("crawl_chunks", "crawling", true)
        .feed_key("crawl_job_id")
        .secrets(&["lease_id"]),
];

/// How many tables the first schema (migrations 000001 to 000012) made.
pub const FIRST_TABLES: usize = 47;

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

/// The trigger on `credit_accounts` that keeps each balance equal to its ledger.
pub const LEDGER_TRIGGER: &str = "credit_accounts_balance_ledger";

/// The trigger on `messages` that keeps each conversation's `unread_count` and
/// `last_message_at`.
pub const MESSAGE_COUNTS_TRIGGER: &str = "messages_conversation_counts";

/// The trigger on `orders` that keeps each customer's `last_order_at`.
pub const CUSTOMER_LAST_ORDER_TRIGGER: &str = "orders_customer_last_order";

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
    "idx_tasks_claim",
    "idx_tasks_leases",
    "crawl_chunks_crawl_job_id_position_key",
    "idx_crawl_chunks_queue",
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
    "idx_events_seq",
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
    "idx_assignments_visitor",
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
    "user_profiles_user_id_distributor_id_key",
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
