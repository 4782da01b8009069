//! The Shopify apps' workflows: products' versioned AI content.

use async_graphql::dynamic::{InputValue, TypeRef};
use uuid::Uuid;

use super::{Declaration, Returned, declare};
use crate::domains::shopify::content::{self, NewRevision};
use crate::graphql::mutations::Right;

/// The domain's workflows.
pub(super) fn declarations() -> Vec<Declaration> {
    vec![
        declare(
            "contentRevisionCreate",
            "Adds the next revision of a product's content: version = the product's last + 1, \
             with no gap or duplicate however many are written at once.",
            Right::Write,
            vec![
                InputValue::new("productId", TypeRef::named_nn(TypeRef::ID))
                    .description("The product's global id."),
                InputValue::new("content", TypeRef::named_nn(TypeRef::STRING))
                    .description("The content, 1 to 100,000 characters."),
            ],
            |input| {
                NewRevision::parse(
                    input.id("productId", "Product")?,
                    &input.string("content")?.unwrap_or_default(),
                )
            },
            |ctx, revision| Box::pin(content::create(ctx, revision)),
            revision_row(),
        ),
        declare(
            "contentRevisionPublish",
            "Writes a revision's content to its product (`description`).",
            Right::Write,
            vec![revision_id()],
            |input| input.id("id", "ContentRevision"),
            |ctx, id| Box::pin(content::publish(ctx, id)),
            vec![Returned::Row("product", "products", |id: &Uuid| Some(*id))],
        ),
        declare(
            "contentRevisionRestore",
            "Makes a new revision equal to an old one; the history is never rewritten.",
            Right::Write,
            vec![revision_id()],
            |input| input.id("id", "ContentRevision"),
            |ctx, id| Box::pin(content::restore(ctx, id)),
            revision_row(),
        ),
    ]
}

fn revision_id() -> InputValue {
    InputValue::new("id", TypeRef::named_nn(TypeRef::ID)).description("The revision's global id.")
}

fn revision_row() -> Vec<Returned<Uuid>> {
    vec![Returned::Row(
        "contentRevision",
        "content_revisions",
        |id| Some(*id),
    )]
}
