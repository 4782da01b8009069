//! Compiled read plans: the fast path for the read queries an app sends again and again.
//!
//! async-graphql's executor resolves every field through a future of its own and builds a
//! value tree before serialising it; for a page of rows with nested relations that is most
//! of a request's CPU. A query made only of table connections (`nodes`, `edges`,
//! `pageInfo`, `totalCount`), relations, columns, ids and `__typename` needs none of it.
//! Once such a document has run through the schema without errors (so it is valid), it is
//! compiled into a [`ReadPlan`] and cached by its text; later requests with the same text
//! bind their variables, load level by level through the same store reads and batch specs
//! as the resolvers (one statement per relation per level, the same tenancy scope), and
//! write the JSON response directly.
//!
//! Whatever a plan cannot answer exactly as the executor would goes back to the executor
//! before any SQL runs: a variable that needs coercion, a limit exceeded, a bad argument
//! value. So errors read the same whichever path a document takes.

mod compile;
mod run;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_graphql::parser::types::{ExecutableDocument, Type};
use async_graphql::{Name, Variables};
use async_graphql_value::{ConstValue, Value};

use super::Limits;
use super::model::GqlTable;
use crate::db::RequestDb;
use crate::error::ApiResult;
use crate::lru::Lru;
use crate::store::{Columns, Scope};

pub use run::Answer;

/// A query document compiled for the fast path.
pub struct ReadPlan {
    /// The parsed document, for the limits (its cost may depend on the variables).
    document: ExecutableDocument,
    /// The operation's variables.
    variables: Vec<Variable>,
    /// The root fields, by response key.
    roots: Vec<(Name, Root)>,
}

/// A declared variable: only scalar types (and lists of them) are planned, so a value is
/// either accepted as it is or handed to the executor to refuse.
struct Variable {
    name: Name,
    ty: Type,
    default: Option<ConstValue>,
}

/// Field arguments as written, variables not yet substituted.
type Arguments = Vec<(Name, Value)>;

enum Root {
    Typename,
    Connection(Arguments, ConnectionPlan),
}

/// A connection selection; at most one object selection (`nodes` or `edges.node`).
struct ConnectionPlan {
    gql: &'static GqlTable,
    items: Vec<(Name, ConnectionItem)>,
    /// Whether the rows are read at all (`totalCount` alone does not).
    needs_rows: bool,
    /// Whether `totalCount` is asked for.
    total_count: bool,
}

enum ConnectionItem {
    Typename,
    TotalCount,
    Nodes(ObjectPlan),
    Edges(Vec<(Name, EdgeItem)>),
    PageInfo(Vec<(Name, PageItem)>),
}

enum EdgeItem {
    Typename,
    Cursor,
    Node(ObjectPlan),
}

enum PageItem {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

/// A row object selection.
struct ObjectPlan {
    gql: &'static GqlTable,
    /// The columns to read (see `query::columns_of`).
    columns: Columns,
    items: Vec<(Name, ObjectItem)>,
}

enum ObjectItem {
    Typename,
    Id,
    Column(usize),
    /// A `belongs_to` or `has_one` relation (by index): one row or null.
    Parent(usize, ObjectPlan),
    /// A `has_many` relation: a connection.
    Children(usize, Arguments, ConnectionPlan),
}

impl ConnectionPlan {
    /// The object selection inside, if any.
    fn object(&self) -> Option<&ObjectPlan> {
        self.items.iter().find_map(|(_, item)| match item {
            ConnectionItem::Nodes(object) => Some(object),
            ConnectionItem::Edges(items) => items.iter().find_map(|(_, item)| match item {
                EdgeItem::Node(object) => Some(object),
                _ => None,
            }),
            _ => None,
        })
    }
}

/// The most documents remembered; past it the least recently used is forgotten.
const CAPACITY: usize = 1024;
/// The longest document remembered (bytes): with [`CAPACITY`], what bounds the memory.
const MAX_DOCUMENT: usize = 32 << 10;

/// Plans by query text and operation name; `None` marks a document the executor keeps.
pub struct PlanCache {
    plans: Lru<PlanKey, Option<Arc<ReadPlan>>>,
    hits: AtomicU64,
}

impl Default for PlanCache {
    fn default() -> Self {
        Self {
            plans: Lru::new(CAPACITY),
            hits: AtomicU64::new(0),
        }
    }
}

/// A document's identity: its text and the operation asked for.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    query: String,
    operation: Option<String>,
}

impl PlanKey {
    /// The key of `query` run as `operation`.
    pub fn new(query: &str, operation: Option<&str>) -> Self {
        Self {
            query: query.to_owned(),
            operation: operation.map(str::to_owned),
        }
    }
}

impl PlanCache {
    /// Answers a request for `key`'s document through its plan, or `Ok(None)` when there
    /// is none or it hands the request to the executor (nothing has run then).
    pub async fn answer(
        &self,
        key: &PlanKey,
        db: &RequestDb,
        scope: &Scope,
        variables: &Variables,
        limits: &Limits,
    ) -> ApiResult<Option<Answer>> {
        let Some(plan) = self.plans.get(key).flatten() else {
            crate::telemetry::metrics::plan_lookup(false);
            return Ok(None);
        };
        let answer = plan.run(db, scope, variables, limits).await?;
        crate::telemetry::metrics::plan_lookup(answer.is_some());
        if answer.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(answer)
    }

    /// Compiles `key`'s document, which has just run without errors, unless already known.
    pub fn learn(&self, key: &PlanKey) {
        if key.query.len() > MAX_DOCUMENT || self.plans.contains(key) {
            return;
        }
        let plan = ReadPlan::compile(&key.query, key.operation.as_deref()).map(Arc::new);
        self.plans.insert(key.clone(), plan);
    }

    /// How many requests plans have answered.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_benchmark_read_compiles_to_a_plan() {
        let q = include_str!("../../../../bench/queries/stratix/a_shop_products.graphql");
        assert!(ReadPlan::compile(q, None).is_some());
        assert!(ReadPlan::compile(q, Some("ShopProducts")).is_some());
    }
}
