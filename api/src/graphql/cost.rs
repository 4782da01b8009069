//! A request's cost in points, calculated as Shopify's Admin API does: before it runs from
//! the document (the requested cost) and after from the data it returned (the actual cost).
//!
//! | selected | points |
//! |---|---|
//! | a scalar or enum field | 0 |
//! | an object field | 1 per row it is selected for |
//! | a connection | 2, plus 1 per row (`first`/`last`, else the default page of 100), its rows' fields counted once per row |
//! | `nodes(ids:)` | 1 per id |
//! | a mutation's root field | 10, whatever it selects |
//!
//! A connection's `pageInfo`, `edges` and `node` are part of its 2 + rows. Other lists of
//! objects (`groupBy`) count as one object when requested; the actual cost is never more
//! than the requested one. Every request costs at least 1. The walk is bounded
//! ([`MAX_NODES`]): a document whose expansion through fragments is larger costs
//! [`SATURATED`], so it is refused as over the maximum before anything runs.

use async_graphql::parser::types::{
    ExecutableDocument, Field, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, Value, Variables};

use super::query::{DEFAULT_PAGE, MAX_PAGE};

/// What one mutation root field costs.
pub const MUTATION: u64 = 10;

/// How many fields with a selection set the walk expands (fragments included) before it
/// gives up and prices the document at [`SATURATED`].
pub const MAX_NODES: usize = 10_000;

/// The cost of a document too large to price.
pub const SATURATED: u64 = u64::MAX / 4;

/// A priced operation: the object fields it selects, as a tree.
#[derive(Debug, Default)]
pub struct Cost {
    /// The root fields with a selection set.
    fields: Vec<Node>,
    /// Root fields of a mutation (each costs [`MUTATION`]), 0 for a query or subscription.
    mutations: u64,
    /// The walk stopped at [`MAX_NODES`].
    saturated: bool,
}

#[derive(Debug)]
struct Node {
    /// The field's name in the schema.
    name: Name,
    /// Its key in the response (the alias, or the name).
    key: Name,
    /// A connection and its page size, or an object (`rows` > 1 for `nodes(ids:)`).
    connection: bool,
    rows: u64,
    children: Vec<Node>,
}

impl Cost {
    /// Prices operation `name` of `document` (the only one, or the first, without a name).
    pub fn of(document: &ExecutableDocument, name: Option<&str>, variables: &Variables) -> Self {
        let operation = document
            .operations
            .iter()
            .find(|(n, _)| name.is_none() || n.map(|n| n.as_str()) == name)
            .map(|(_, operation)| &operation.node);
        let Some(operation) = operation else {
            return Self::default();
        };
        let mut build = Build {
            document,
            variables,
            nodes: 0,
            spreads: 0,
        };
        if operation.ty == OperationType::Mutation {
            let mut roots = 0;
            build.count_roots(&operation.selection_set.node, &mut roots, 0);
            return Self {
                mutations: roots,
                ..Self::default()
            };
        }
        let mut fields = Vec::new();
        build.selection_set(&operation.selection_set.node, &mut fields, 0);
        Self {
            fields,
            mutations: 0,
            saturated: build.nodes > MAX_NODES,
        }
    }

    /// The requested cost: the most the operation may cost (at least 1).
    pub fn requested(&self) -> u64 {
        if self.saturated {
            return SATURATED;
        }
        let fields: u64 = self.fields.iter().map(Node::requested).sum();
        fields
            .saturating_add(self.mutations.saturating_mul(MUTATION))
            .max(1)
    }

    /// The actual cost: what the operation cost given the `data` it returned (at least 1,
    /// at most the requested cost).
    pub fn actual<D: Data>(&self, data: Option<&D>) -> u64 {
        let requested = self.requested();
        if self.mutations > 0 || self.saturated {
            return requested;
        }
        let Some(data) = data else {
            return 1;
        };
        let fields: u64 = self
            .fields
            .iter()
            .map(|field| field.actual(data.field(&field.key)))
            .sum();
        fields.clamp(1, requested)
    }
}

impl Node {
    fn requested(&self) -> u64 {
        if !self.connection {
            let children: u64 = self.children.iter().map(Node::requested).sum();
            return self.rows.saturating_mul(children.saturating_add(1));
        }
        let mut total = 2u64.saturating_add(self.rows);
        for child in &self.children {
            let cost = match child.name.as_str() {
                "pageInfo" => 0,
                "nodes" => self.rows.saturating_mul(child.row_fields()),
                "edges" => self.rows.saturating_mul(
                    child
                        .children
                        .iter()
                        .map(|c| match c.name.as_str() {
                            "node" => c.row_fields(),
                            _ => c.requested(),
                        })
                        .sum(),
                ),
                _ => child.requested(),
            };
            total = total.saturating_add(cost);
        }
        total
    }

    /// What one row's selected fields cost (the row itself is paid for by its connection).
    fn row_fields(&self) -> u64 {
        self.children.iter().map(Node::requested).sum()
    }

    fn actual<D: Data>(&self, value: Option<&D>) -> u64 {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return 0;
        };
        if let Some(items) = value.items() {
            return items.iter().map(|item| self.actual(Some(item))).sum();
        }
        if !self.connection {
            return 1 + fields_of(&self.children, value);
        }
        let mut rows = 0u64;
        let mut total = 2u64;
        for child in &self.children {
            let Some(inner) = value.field(&child.key) else {
                continue;
            };
            match child.name.as_str() {
                "pageInfo" => {}
                "nodes" => {
                    let items = inner.items().unwrap_or_default();
                    rows = rows.max(items.len() as u64);
                    total += items
                        .iter()
                        .filter(|item| !item.is_null())
                        .map(|item| fields_of(&child.children, item))
                        .sum::<u64>();
                }
                "edges" => {
                    let items = inner.items().unwrap_or_default();
                    rows = rows.max(items.len() as u64);
                    for edge in items {
                        for part in &child.children {
                            total += match part.name.as_str() {
                                "node" => edge
                                    .field(&part.key)
                                    .filter(|node| !node.is_null())
                                    .map_or(0, |node| fields_of(&part.children, node)),
                                _ => part.actual(edge.field(&part.key)),
                            };
                        }
                    }
                }
                _ => total += child.actual(Some(inner)),
            }
        }
        total + rows
    }
}

/// What `fields` cost in the object `value`.
fn fields_of<D: Data>(fields: &[Node], value: &D) -> u64 {
    fields
        .iter()
        .map(|field| field.actual(value.field(&field.key)))
        .sum()
}

/// Response data the actual cost is read from: the executor's values or a plan's JSON.
pub trait Data: Sized {
    /// The field `key` of an object.
    fn field(&self, key: &str) -> Option<&Self>;
    /// The items of a list.
    fn items(&self) -> Option<&[Self]>;
    /// Whether this is null.
    fn is_null(&self) -> bool;
}

impl Data for Value {
    fn field(&self, key: &str) -> Option<&Self> {
        match self {
            Value::Object(object) => object.get(key),
            _ => None,
        }
    }

    fn items(&self) -> Option<&[Self]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl Data for serde_json::Value {
    fn field(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }

    fn items(&self) -> Option<&[Self]> {
        self.as_array().map(Vec::as_slice)
    }

    fn is_null(&self) -> bool {
        self.is_null()
    }
}

struct Build<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Fields with a selection set made into nodes so far.
    nodes: usize,
    /// Fragment spreads followed so far.
    spreads: usize,
}

impl Build<'_> {
    /// Whether the walk must stop: too many nodes, too deep, or a fragment cycle (which
    /// validation names later).
    fn exhausted(&self, level: usize) -> bool {
        self.nodes > MAX_NODES || self.spreads > MAX_NODES || level > 64
    }

    /// Adds the object fields of `set` to `into`, merging fields of the same response key
    /// (as the executor does).
    fn selection_set(&mut self, set: &SelectionSet, into: &mut Vec<Node>, level: usize) {
        if self.exhausted(level) {
            self.nodes = MAX_NODES + 1;
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    if field.selection_set.node.items.is_empty() {
                        continue;
                    }
                    self.nodes += 1;
                    let key = field.response_key().node.clone();
                    let index = match into.iter().position(|node| node.key == key) {
                        Some(index) => index,
                        None => {
                            let (connection, rows) = self.rows(field);
                            into.push(Node {
                                name: field.name.node.clone(),
                                key,
                                connection,
                                rows,
                                children: Vec::new(),
                            });
                            into.len() - 1
                        }
                    };
                    let mut children = std::mem::take(&mut into[index].children);
                    self.selection_set(&field.selection_set.node, &mut children, level + 1);
                    into[index].children = children;
                }
                Selection::FragmentSpread(spread) => {
                    self.spreads += 1;
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.selection_set(&fragment.node.selection_set.node, into, level + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node, into, level + 1);
                }
            }
        }
    }

    /// Counts a mutation's root fields (through fragments).
    fn count_roots(&mut self, set: &SelectionSet, roots: &mut u64, level: usize) {
        if self.exhausted(level) {
            *roots = SATURATED / MUTATION;
            return;
        }
        for item in &set.items {
            match &item.node {
                Selection::Field(_) => *roots += 1,
                Selection::FragmentSpread(spread) => {
                    self.spreads += 1;
                    if let Some(fragment) =
                        self.document.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.count_roots(&fragment.node.selection_set.node, roots, level + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.count_roots(&inline.node.selection_set.node, roots, level + 1);
                }
            }
        }
    }

    /// Whether `field` is a connection, and how many rows it stands for: a connection's
    /// `first`/`last` (at most the largest page), else the default page; `nodes(ids:)`
    /// its ids; any other object one.
    fn rows(&self, field: &Field) -> (bool, u64) {
        let argument = |name: &str| {
            field.get_argument(name).and_then(|value| {
                value
                    .node
                    .clone()
                    .into_const_with(|var| self.variables.get(&var).cloned().ok_or(()))
                    .ok()
            })
        };
        if let Some(Value::List(ids)) = argument("ids") {
            return (false, (ids.len() as u64).max(1));
        }
        let size = ["first", "last"]
            .into_iter()
            .find_map(|name| match argument(name) {
                Some(Value::Number(n)) => Some(n.as_u64().unwrap_or(0).min(MAX_PAGE)),
                _ => None,
            });
        let is_connection = field.selection_set.node.items.iter().any(|item| {
            matches!(&item.node, Selection::Field(f) if matches!(f.node.name.node.as_str(), "nodes" | "edges" | "pageInfo"))
        });
        match (size, is_connection) {
            (Some(size), _) => (true, size),
            (None, true) => (true, DEFAULT_PAGE),
            (None, false) => (false, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(query: &str) -> Cost {
        let document = async_graphql::parser::parse_query(query).unwrap();
        Cost::of(&document, None, &Variables::default())
    }

    #[test]
    fn prices_like_shopify() {
        // A scalar costs nothing, but every request at least 1.
        assert_eq!(cost("{ __typename }").requested(), 1);
        // An object: 1.
        assert_eq!(cost("{ node(id: \"x\") { id } }").requested(), 1);
        // A connection of 10: 2 + 10; its rows' scalars are free.
        assert_eq!(
            cost("{ products(first: 10) { nodes { id title } pageInfo { hasNextPage } } }")
                .requested(),
            12
        );
        // Each row's object field: once per row; a nested connection of 5 per row.
        assert_eq!(
            cost("{ products(first: 10) { edges { cursor node { shop { id } revisions: contentRevisions(first: 5) { nodes { id } } } } } }").requested(),
            2 + 10 + 10 * (1 + (2 + 5))
        );
        // Without first/last, the default page.
        assert_eq!(
            cost("{ products { nodes { id } } }").requested(),
            2 + DEFAULT_PAGE
        );
        // Mutations: 10 per root field.
        assert_eq!(
            cost("mutation { a: signIn(input: {}) { token } b: signIn(input: {}) { token } }")
                .requested(),
            20
        );
    }

    #[test]
    fn actual_cost_counts_the_rows_returned() {
        let priced = cost("{ products(first: 10) { nodes { id shop { id } } } }");
        assert_eq!(priced.requested(), 2 + 10 + 10);
        let data = serde_json::json!({ "products": { "nodes": [
            { "id": "1", "shop": { "id": "s" } },
            { "id": "2", "shop": null },
        ] } });
        assert_eq!(priced.actual(Some(&data)), 2 + 2 + 1);
        let none = serde_json::json!({ "products": null });
        assert_eq!(priced.actual(Some(&none)), 1);
    }

    #[test]
    fn fragment_fan_out_saturates() {
        let mut query = String::from("{ ...f0 }\n");
        for i in 0..30 {
            query.push_str(&format!("fragment f{i} on Query {{ a: products {{ nodes {{ ...f{n} }} }} b: products {{ nodes {{ ...f{n} }} }} }}\n", n = i + 1));
        }
        query.push_str("fragment f30 on Product { id }\n");
        assert_eq!(cost(&query).requested(), SATURATED);
    }
}
