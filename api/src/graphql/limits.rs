//! Request limits, checked on the parsed document before anything runs: depth, aliases
//! and an estimated cost (rows a query may touch: each field counts once per row of every
//! connection around it, a connection's size being its `first`/`last`, else 100). The cost
//! is reported in `extensions.cost`. Failures, and every other error raised before
//! execution (syntax, unknown fields, bad enum values), carry `BAD_USER_INPUT`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Response, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use super::query::DEFAULT_PAGE;

/// The limits every request is held to.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How deeply fields may nest.
    pub max_depth: usize,
    /// How many aliased fields one document may hold.
    pub max_aliases: usize,
    /// The highest estimated cost.
    pub max_cost: u64,
    /// How many operations one batched HTTP request may hold.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_aliases: 30,
            max_cost: 50_000,
            max_batch: 10,
        }
    }
}

/// A GraphQL error with `extensions.code = BAD_USER_INPUT`.
pub fn bad_input(message: impl Into<String>) -> ServerError {
    with_code(ServerError::new(message, None))
}

fn with_code(mut error: ServerError) -> ServerError {
    let extensions = error
        .extensions
        .get_or_insert_with(ErrorExtensionValues::default);
    if extensions.get("code").is_none() {
        extensions.set("code", "BAD_USER_INPUT");
    }
    error
}

impl Limits {
    /// Refuses a document whose shape is over a limit.
    pub fn check(&self, shape: &Shape) -> ServerResult<()> {
        if shape.depth > self.max_depth {
            return Err(bad_input(format!(
                "query depth {} exceeds the limit of {}",
                shape.depth, self.max_depth
            )));
        }
        if shape.aliases > self.max_aliases {
            return Err(bad_input(format!(
                "{} aliases exceed the limit of {}",
                shape.aliases, self.max_aliases
            )));
        }
        if shape.cost > self.max_cost {
            return Err(bad_input(format!(
                "query cost {} exceeds the limit of {} (lower first/last)",
                shape.cost, self.max_cost
            )));
        }
        Ok(())
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            limits: *self,
            cost: AtomicU64::new(0),
        })
    }
}

struct LimitsExtension {
    limits: Limits,
    cost: AtomicU64,
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(with_code)?;
        let shape = Shape::of(&document, variables);
        self.limits.check(&shape)?;
        self.cost.store(shape.cost, Ordering::Relaxed);
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx)
            .await
            .map_err(|errors| errors.into_iter().map(with_code).collect())
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let response = next.run(ctx, operation_name).await;
        response.extension("cost", Value::from(self.cost.load(Ordering::Relaxed)))
    }
}

/// What the limits look at in a document.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// The deepest field nesting.
    pub depth: usize,
    /// Fields with an alias.
    pub aliases: usize,
    /// The estimated cost.
    pub cost: u64,
}

impl Shape {
    /// Measures every operation of `document` (the worst one counts).
    pub fn of(document: &ExecutableDocument, variables: &Variables) -> Self {
        let mut shape = Self::default();
        for (_, operation) in document.operations.iter() {
            let mut walk = Walk {
                document,
                variables,
                aliases: 0,
                fragments_seen: 0,
            };
            let (depth, cost) = walk.selection_set(&operation.node.selection_set.node, 1, 0);
            shape.depth = shape.depth.max(depth);
            shape.cost = shape.cost.max(cost);
            shape.aliases = shape.aliases.max(walk.aliases);
        }
        shape
    }
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    aliases: usize,
    fragments_seen: usize,
}

impl Walk<'_> {
    /// Returns (depth, cost) of a selection set whose fields each appear `rows` times.
    fn selection_set(&mut self, set: &SelectionSet, rows: u64, level: usize) -> (usize, u64) {
        // Fragment cycles are rejected by validation later; this guards the walk itself.
        if level > 64 || self.fragments_seen > 10_000 {
            return (level, u64::MAX / 4);
        }
        let mut depth = 0;
        let mut cost: u64 = 0;
        for item in &set.items {
            let (d, c) = match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.alias.is_some() {
                        self.aliases += 1;
                    }
                    let children = &field.selection_set.node;
                    if children.items.is_empty() {
                        (1, rows)
                    } else {
                        let size = self.page_size(field);
                        let (d, c) =
                            self.selection_set(children, rows.saturating_mul(size), level + 1);
                        (d + 1, rows.saturating_add(c))
                    }
                }
                Selection::FragmentSpread(spread) => {
                    self.fragments_seen += 1;
                    match self.document.fragments.get(&spread.node.fragment_name.node) {
                        Some(fragment) => {
                            self.selection_set(&fragment.node.selection_set.node, rows, level)
                        }
                        None => (0, 0),
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, rows, level)
                }
            };
            depth = depth.max(d);
            cost = cost.saturating_add(c);
        }
        (depth, cost)
    }

    /// How many rows a field's children repeat for: its `first`/`last`, or the default page
    /// for a connection (a field selecting `nodes` or `edges`), else one.
    fn page_size(&self, field: &async_graphql::parser::types::Field) -> u64 {
        for name in ["first", "last"] {
            if let Some(value) = field.get_argument(name) {
                let value = value
                    .node
                    .clone()
                    .into_const_with(|var| self.variables.get(&var).cloned().ok_or(()))
                    .ok();
                if let Some(Value::Number(n)) = value {
                    return n.as_u64().unwrap_or(DEFAULT_PAGE);
                }
            }
        }
        let is_connection = field.selection_set.node.items.iter().any(|item| {
            matches!(&item.node, Selection::Field(f) if matches!(f.node.name.node.as_str(), "nodes" | "edges"))
        });
        if is_connection { DEFAULT_PAGE } else { 1 }
    }
}
