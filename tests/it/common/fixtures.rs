//! Fixture rows, written straight to the database with sea-query inserts; the database
//! fills every column not given (ids, timestamps, defaults).

use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, Value};
use serde_json::json;
use uuid::Uuid;

/// Inserts one row into `table` with these columns and returns its id.
pub async fn row(db: &DatabaseConnection, table: &str, values: Vec<(&str, Value)>) -> Uuid {
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert.into_table(Alias::new(table));
    let mut columns = vec![Alias::new("id")];
    let mut row: Vec<sea_orm::sea_query::Expr> = vec![id.into()];
    for (column, value) in values {
        columns.push(Alias::new(column));
        row.push(value.into());
    }
    insert.columns(columns);
    insert.values(row).unwrap();
    db.execute(&insert)
        .await
        .unwrap_or_else(|e| panic!("inserting into {table}: {e}"));
    id
}

/// A shop with this domain.
pub async fn shop(db: &DatabaseConnection, domain: &str) -> Uuid {
    row(
        db,
        "shops",
        vec![
            ("domain", domain.into()),
            ("access_token_enc", vec![1u8, 2, 3].into()),
        ],
    )
    .await
}

/// A product of `shop`.
pub async fn product(db: &DatabaseConnection, shop: Uuid, shopify_id: &str) -> Uuid {
    row(
        db,
        "products",
        vec![
            ("shopify_id", shopify_id.into()),
            ("handle", format!("handle-{shopify_id}").into()),
            ("title", format!("Product {shopify_id}").into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

/// Revision `version` of `product`.
pub async fn revision(db: &DatabaseConnection, shop: Uuid, product: Uuid, version: i32) -> Uuid {
    row(
        db,
        "content_revisions",
        vec![
            ("product_id", product.into()),
            ("content", format!("v{version}").into()),
            ("version", version.into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

/// An experiment of `shop`.
pub async fn experiment(db: &DatabaseConnection, shop: Uuid, name: &str) -> Uuid {
    row(
        db,
        "experiments",
        vec![
            ("name", name.into()),
            ("target", "product_page:cta".into()),
            ("allocation", json!({"control": 0.5, "b": 0.5}).into()),
            ("variants", json!({"control": {}, "b": {}}).into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

/// A results row of `experiment`.
pub async fn result(
    db: &DatabaseConnection,
    shop: Uuid,
    experiment: Uuid,
    variant: &str,
    segment: Option<&str>,
    purchase: i32,
    revenue: &str,
) -> Uuid {
    row(
        db,
        "results_aggregates",
        vec![
            ("experiment_id", experiment.into()),
            ("variant", variant.into()),
            ("segment", Value::String(segment.map(str::to_owned))),
            ("visitors", 100.into()),
            ("purchase", purchase.into()),
            (
                "revenue",
                revenue.parse::<rust_decimal::Decimal>().unwrap().into(),
            ),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

/// A user with this email (the database makes its profile and credits).
pub async fn user(db: &DatabaseConnection, email: &str) -> Uuid {
    row(db, "users", vec![("email", email.into())]).await
}

/// An event of `shop` at `ts`.
pub async fn event(
    db: &DatabaseConnection,
    shop: Uuid,
    event_type: &str,
    ts: chrono::DateTime<chrono::Utc>,
) -> Uuid {
    row(
        db,
        "events",
        vec![
            ("anon_id", "anon".into()),
            ("session_id", "session".into()),
            ("event_type", event_type.into()),
            ("ts", ts.into()),
            ("shop_id", shop.into()),
        ],
    )
    .await
}

/// A user, one clone of theirs, and `n` pending tasks of it, in one statement.
pub async fn queue(db: &DatabaseConnection, email: &str, n: usize) -> (Uuid, Vec<Uuid>) {
    let user = user(db, email).await;
    let clone = row(
        db,
        "ai_clones",
        vec![
            ("name", "clone".into()),
            ("model_type", "gpt".into()),
            ("user_id", user.into()),
        ],
    )
    .await;
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::new_v4()).collect();
    let mut insert = Query::insert();
    insert.into_table(Alias::new("ai_tasks")).columns([
        Alias::new("id"),
        Alias::new("clone_id"),
        Alias::new("task_name"),
        Alias::new("user_id"),
    ]);
    for id in &ids {
        insert
            .values([(*id).into(), clone.into(), "summarise".into(), user.into()])
            .unwrap();
    }
    db.execute(&insert).await.unwrap();
    (user, ids)
}
