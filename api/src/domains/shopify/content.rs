//! Versioned AI content of products: `content_revisions`.

use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Condition, Expr, ExprTrait, LockType, Query};
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::{WriteCtx, next_version};
use crate::error::{ApiError, ApiResult, InputCode};
use crate::realtime::Write;
use crate::tables::tables;

/// The longest content a revision holds, in characters.
pub const MAX_CONTENT: usize = 100_000;

/// A new revision of a product's content.
#[derive(Clone, Debug)]
pub struct NewRevision {
    /// `products.id`.
    pub product: Uuid,
    /// The content: 1 to [`MAX_CONTENT`] characters.
    pub content: String,
}

impl NewRevision {
    /// Checks the content given as `input.content`.
    pub fn parse(product: Uuid, content: &str) -> ApiResult<Self> {
        if content.trim().is_empty() || content.chars().count() > MAX_CONTENT {
            return Err(ApiError::bad_input(
                "input.content",
                format!("must be 1 to {MAX_CONTENT} characters"),
            ));
        }
        Ok(Self {
            product,
            content: content.to_owned(),
        })
    }
}

fn may_edit(ctx: &WriteCtx<'_>) -> ApiResult<()> {
    match ctx.principal {
        Principal::Shop { .. } | Principal::Service => Ok(()),
        _ => Err(ApiError::Forbidden(
            "product content is written by its shop".to_owned(),
        )),
    }
}

/// Locks `product` for the rest of the request (so revisions of one product are numbered
/// one writer at a time, across instances too); returns its shop. `NOT_FOUND` on `field`
/// when the caller cannot write it.
async fn lock_product(ctx: &WriteCtx<'_>, product: Uuid, field: &str) -> ApiResult<Uuid> {
    let products = tables().named("products")?;
    let mut select = Query::select();
    select
        .from(products.name)
        .column("shop_id")
        .and_where(Expr::col("id").eq(product))
        .cond_where(ctx.scope.write_condition(products)?)
        .lock(LockType::Update);
    match ctx.db.query_one(&select).await? {
        Some(row) => Ok(row.try_get_by_index(0)?),
        None => Err(ApiError::refused(
            field,
            InputCode::NotFound,
            "no such product",
        )),
    }
}

/// Writes revision `last + 1` of a locked product.
async fn append(ctx: &WriteCtx<'_>, product: Uuid, shop: Uuid, content: String) -> ApiResult<Uuid> {
    let of_product = Condition::all().add(Expr::col("product_id").eq(product));
    let version = next_version(ctx, "content_revisions", of_product).await?;
    let id = Uuid::new_v4();
    let mut insert = Query::insert();
    insert
        .into_table("content_revisions")
        .columns(["id", "product_id", "content", "version", "shop_id"])
        .values([
            Expr::val(id),
            Expr::val(product),
            Expr::val(content),
            Expr::val(version),
            Expr::val(shop),
        ])
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    ctx.db.execute(&insert).await?;
    ctx.outbox
        .record(Write::insert("content_revisions", id, Some(shop)));
    Ok(id)
}

/// Adds the next revision of a product's content.
pub async fn create(ctx: &WriteCtx<'_>, input: NewRevision) -> ApiResult<Uuid> {
    may_edit(ctx)?;
    let shop = lock_product(ctx, input.product, "input.productId").await?;
    append(ctx, input.product, shop, input.content).await
}

/// A revision the caller may write: (product, content).
async fn revision(ctx: &WriteCtx<'_>, revision: Uuid) -> ApiResult<(Uuid, String)> {
    let revisions = tables().named("content_revisions")?;
    let mut select = Query::select();
    select
        .from(revisions.name)
        .columns(["product_id", "content"])
        .and_where(Expr::col("id").eq(revision))
        .cond_where(ctx.scope.write_condition(revisions)?);
    match ctx.db.query_one(&select).await? {
        Some(row) => Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)),
        None => Err(ApiError::NotFound("content revision".to_owned())),
    }
}

/// Writes a revision's content to its product's description; returns the product.
pub async fn publish(ctx: &WriteCtx<'_>, id: Uuid) -> ApiResult<Uuid> {
    may_edit(ctx)?;
    let (product, content) = revision(ctx, id).await?;
    let shop = lock_product(ctx, product, "input.id").await?;
    let mut update = Query::update();
    update
        .table("products")
        .value("description", content)
        .and_where(Expr::col("id").eq(product));
    ctx.db.execute(&update).await?;
    ctx.outbox
        .record(Write::update("products", product, Some(shop)));
    Ok(product)
}

/// Makes a new revision with the content of an old one (the old one stays as it was).
pub async fn restore(ctx: &WriteCtx<'_>, id: Uuid) -> ApiResult<Uuid> {
    may_edit(ctx)?;
    let (product, content) = revision(ctx, id).await?;
    let shop = lock_product(ctx, product, "input.id").await?;
    append(ctx, product, shop, content).await
}
