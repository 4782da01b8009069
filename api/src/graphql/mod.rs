//! The GraphQL API: a schema generated from the table model, with Relay connections,
//! filters, ordering, aggregates and batched relations for every table.

pub mod cost;
mod docs;
pub(crate) mod ids;
pub mod limits;
mod loaders;
mod model;
mod mutations;
pub mod names;
pub mod plan;
mod query;
mod resolve;
mod scalars;
mod types;

use std::time::Duration;

use std::sync::Arc;

use async_graphql::ServerResult;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use async_graphql::dynamic::{
    Field, FieldFuture, InputValue, Object, Schema, SchemaError, TypeRef,
};
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};

pub use limits::Limits;
use loaders::BatchLoader;
pub use loaders::Batches;
use model::model;
use resolve::run;

pub use crate::request::RequestContext;

use crate::db::RequestDb;
use crate::store::Scope;

/// The request's batch loader. Prefetching hands it each level's keys at once, so it need
/// not wait for siblings: a batch starts as soon as it is asked for.
pub fn batch_loader(db: RequestDb, scope: Scope) -> Batches {
    DataLoader::with_cache(
        BatchLoader::new(db, scope),
        |task| {
            // The request's span goes along, so the batch's log lines carry its request id.
            tokio::spawn(tracing::Instrument::in_current_span(
                crate::db::with_statement_counter(task),
            ));
        },
        HashMapCache::default(),
    )
    .delay(Duration::ZERO)
}

/// Lets an item of `nodes(ids:)` be null. The dynamic executor resolves a list item of an
/// interface type only from a typed value and fails on null, so the item a resolver left
/// null (an id with no visible row) is answered as null here instead.
struct NullNodes;

impl ExtensionFactory for NullNodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(NullNodes)
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for NullNodes {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        let item_of_nodes = info.parent_type == "[Node]";
        match next.run(ctx, info).await {
            // The one error a null item of `[Node]` raises (nothing else can: every row
            // comes with its type).
            Err(error)
                if item_of_nodes
                    && error
                        .message
                        .starts_with("internal: invalid value for interface \"Node\"") =>
            {
                Ok(None)
            }
            other => other,
        }
    }
}

/// Builds the schema, with introspection.
pub fn schema(limits: Limits) -> Result<Schema, SchemaError> {
    schema_with(limits, true)
}

/// Builds the schema; without `introspection`, `__schema` and `__type` answer nothing.
pub fn schema_with(limits: Limits, introspection: bool) -> Result<Schema, SchemaError> {
    let mut query = Object::new("Query")
        .description("Every table as a Relay connection, and any row by its global id.")
        .field(
            Field::new("node", TypeRef::named("Node"), |ctx| {
                FieldFuture::new(run(async move {
                    let id = ctx
                        .args
                        .try_get("id")
                        .and_then(|v| v.string().map(str::to_owned));
                    let id = id.map_err(|e| crate::error::ApiError::bad_input("id", e.message))?;
                    let mut found = resolve::nodes(&ctx, &[("id".to_owned(), id)]).await?;
                    Ok(found.pop().flatten())
                }))
            })
            .description(
                "The row with this global id, or null if there is none the caller may see.",
            )
            .argument(InputValue::new("id", TypeRef::named_nn(TypeRef::ID))),
        )
        .field(
            Field::new("nodes", TypeRef::named_list_nn("Node"), |ctx| {
                FieldFuture::new(run(async move {
                    let list = ctx
                        .args
                        .try_get("ids")
                        .and_then(|v| v.list())
                        .map_err(|e| crate::error::ApiError::bad_input("ids", e.message))?;
                    if list.len() > query::MAX_PAGE as usize {
                        return Err(crate::error::ApiError::bad_input("ids", "at most 250 ids"));
                    }
                    let ids = list
                        .iter()
                        .enumerate()
                        .map(|(i, v)| Ok((format!("ids[{i}]"), v.string()?.to_owned())))
                        .collect::<async_graphql::Result<Vec<_>>>()
                        .map_err(|e| crate::error::ApiError::bad_input("ids", e.message))?;
                    let found = resolve::nodes(&ctx, &ids).await?;
                    Ok(Some(async_graphql::dynamic::FieldValue::list(
                        found
                            .into_iter()
                            .map(|row| row.unwrap_or(async_graphql::dynamic::FieldValue::NULL)),
                    )))
                }))
            })
            .description(
                "The rows with these global ids (at most 250): one entry per id, in the order asked, \
                 null where there is no row the caller may see.",
            )
            .argument(InputValue::new(
                "ids",
                TypeRef::named_nn_list_nn(TypeRef::ID),
            )),
        );
    for gql in model() {
        query = query.field(types::root_field(gql));
    }
    let mut builder = Schema::build("Query", Some("Mutation"), Some("Subscription"))
        .register(query)
        .extension(limits)
        .extension(NullNodes)
        .limit_recursive_depth(64);
    if !introspection {
        builder = builder.disable_introspection();
    }
    builder = scalars::register(builder);
    builder = types::register_common(builder);
    builder = mutations::register(builder);
    builder = crate::realtime::schema::register(builder);
    for gql in model() {
        builder = types::register_table(builder, gql);
    }
    builder.finish()
}
