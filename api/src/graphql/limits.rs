//! Request limits, in two steps before anything runs.
//!
//! 1. On the text, before parsing ([`Limits::admit`]): document size, token count and
//!    bracket nesting (which also bounds the parser's recursion), and the size and nesting
//!    of `variables`. A lexical scan, linear in the text and allocating nothing.
//! 2. On the parsed document, before validation ([`Limits::check_document`] and
//!    [`Limits::check`]): directives per location, repeated response keys in one selection
//!    set, fragment count and nesting, nesting of input values in arguments, then depth,
//!    aliases and an estimated cost (rows a query may touch: each field counts once per row
//!    of every connection around it, a connection's size being its `first`/`last`, else
//!    100). This bounds the work of any request, the service's too; what principals are
//!    charged is [`super::cost`].
//!
//! Each refusal is `BAD_USER_INPUT` with `extensions.limit` naming the limit; every other
//! error raised before execution (syntax, unknown fields or directives, bad enum values)
//! carries `BAD_USER_INPUT` too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{
    Directive, ExecutableDocument, OperationType, Selection, SelectionSet, VariableDefinition,
};
use async_graphql::{
    ErrorExtensionValues, Positioned, ServerError, ServerResult, ValidationResult, Value, Variables,
};

use async_graphql::registry::{__DirectiveLocation as Location, MetaDirective};

use super::query::DEFAULT_PAGE;
use crate::error::ApiError;

/// The limits every request is held to (see the README's "Hardening").
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
    /// The largest HTTP request body and WebSocket message, in bytes.
    pub max_body_bytes: usize,
    /// The largest `variables`, in bytes (as JSON, about).
    pub max_variables_bytes: usize,
    /// The largest document (`query`), in bytes.
    pub max_document_bytes: usize,
    /// The most lexical tokens in a document.
    pub max_tokens: usize,
    /// How deeply brackets (`{`, `[`, `(`) may nest in a document, and lists and objects
    /// in `variables`.
    pub max_nesting: usize,
    /// The most directives on one location (field, fragment, operation, variable).
    pub max_directives: usize,
    /// How often one response key may be selected in one selection set.
    pub max_repeats: usize,
    /// The most fragment definitions in a document.
    pub max_fragments: usize,
    /// How deeply fragment spreads may nest.
    pub max_fragment_depth: usize,
    /// How deeply lists and input objects may nest in an argument's value.
    pub max_input_depth: usize,
    /// The most operations (subscriptions and queries) open at once on one WebSocket.
    pub max_subscriptions_per_connection: usize,
    /// The most operations open at once over all WebSockets of one principal.
    pub max_subscriptions_per_principal: usize,
    /// How long one SQL statement of a request may run (PostgreSQL `statement_timeout`).
    pub statement_timeout: Duration,
    /// How long a request may take in all.
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_aliases: 30,
            max_cost: 50_000,
            max_batch: 10,
            max_body_bytes: 1 << 20,
            max_variables_bytes: 512 << 10,
            max_document_bytes: 64 << 10,
            max_tokens: 10_000,
            max_nesting: 48,
            max_directives: 4,
            max_repeats: 10,
            max_fragments: 50,
            max_fragment_depth: 16,
            max_input_depth: 16,
            max_subscriptions_per_connection: 100,
            max_subscriptions_per_principal: 1_000,
            statement_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
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

/// A refusal naming `limit`: `what` is `found`, over `max`.
fn over(
    limit: &'static str,
    what: &str,
    found: impl std::fmt::Display,
    max: impl std::fmt::Display,
) -> ApiError {
    ApiError::Limit {
        limit,
        message: format!("{what} {found} exceeds the limit of {max} ({limit})"),
    }
}

fn refusal(error: ApiError) -> ServerError {
    error.to_server_error()
}

impl Limits {
    /// Checks a request's text before it is parsed: the document's size, tokens and
    /// nesting, and the size and nesting of its variables.
    pub fn admit(&self, query: &str, variables: &Variables) -> Result<(), ApiError> {
        if query.len() > self.max_document_bytes {
            return Err(over(
                "maxDocumentBytes",
                "document size",
                query.len(),
                self.max_document_bytes,
            ));
        }
        let lexed = Lexed::of(query, self.max_tokens, self.max_nesting);
        if lexed.tokens > self.max_tokens {
            return Err(over(
                "maxTokens",
                "token count",
                format!("{}+", lexed.tokens),
                self.max_tokens,
            ));
        }
        if lexed.nesting > self.max_nesting {
            return Err(over(
                "maxNesting",
                "bracket nesting",
                lexed.nesting,
                self.max_nesting,
            ));
        }
        let mut size = 0;
        for (name, value) in variables.iter() {
            size += name.len() + 4;
            let depth = measure(value, 1, &mut size, self.max_variables_bytes);
            if size > self.max_variables_bytes {
                return Err(over(
                    "maxVariablesBytes",
                    "variables size",
                    format!("{size}+"),
                    self.max_variables_bytes,
                ));
            }
            if depth > self.max_nesting {
                return Err(over(
                    "maxNesting",
                    "variables nesting",
                    depth,
                    self.max_nesting,
                ));
            }
        }
        Ok(())
    }

    /// Checks a parsed document: directives per location (and that each is one of the
    /// schema's `known` directives, allowed there: async-graphql's own validation skips
    /// `__typename` fields and variable definitions), repeated response keys, fragments
    /// and their nesting, and input values nested in arguments.
    pub fn check_document(
        &self,
        document: &ExecutableDocument,
        known: &BTreeMap<String, MetaDirective>,
    ) -> Result<(), ApiError> {
        if document.fragments.len() > self.max_fragments {
            return Err(over(
                "maxFragments",
                "fragment count",
                document.fragments.len(),
                self.max_fragments,
            ));
        }
        let mut check = DocumentCheck {
            limits: self,
            document,
            known,
            depths: HashMap::new(),
        };
        for (_, operation) in document.operations.iter() {
            let operation = &operation.node;
            let location = match operation.ty {
                OperationType::Query => Location::QUERY,
                OperationType::Mutation => Location::MUTATION,
                OperationType::Subscription => Location::SUBSCRIPTION,
            };
            check.directives(&operation.directives, location)?;
            for variable in &operation.variable_definitions {
                check.variable(variable)?;
            }
            check.selection_set(&operation.selection_set.node)?;
        }
        for fragment in document.fragments.values() {
            check.directives(&fragment.node.directives, Location::FRAGMENT_DEFINITION)?;
            check.selection_set(&fragment.node.selection_set.node)?;
        }
        Ok(())
    }

    /// Refuses a document whose shape is over a limit.
    pub fn check(&self, shape: &Shape) -> Result<(), ApiError> {
        if shape.depth > self.max_depth {
            return Err(over("maxDepth", "query depth", shape.depth, self.max_depth));
        }
        if shape.aliases > self.max_aliases {
            return Err(over(
                "maxAliases",
                "alias count",
                shape.aliases,
                self.max_aliases,
            ));
        }
        if shape.cost > self.max_cost {
            return Err(over(
                "maxCost",
                "query cost (lower first/last)",
                shape.cost,
                self.max_cost,
            ));
        }
        Ok(())
    }
}

/// What a lexical scan of a document finds: tokens and bracket nesting. It stops counting
/// once past either limit, so an oversized document costs no more than a small one.
struct Lexed {
    tokens: usize,
    nesting: usize,
}

impl Lexed {
    fn of(text: &str, max_tokens: usize, max_nesting: usize) -> Self {
        let bytes = text.as_bytes();
        let (mut i, mut tokens, mut depth, mut nesting) = (0, 0, 0usize, 0);
        while i < bytes.len() && tokens <= max_tokens && nesting <= max_nesting {
            let byte = bytes[i];
            match byte {
                // Insignificant: whitespace, commas, a byte order mark's bytes.
                b' ' | b'\t' | b'\n' | b'\r' | b',' | 0xEF | 0xBB | 0xBF => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                        i += 1;
                    }
                    continue;
                }
                b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                    i += 3;
                    while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                        i += if bytes[i..].starts_with(b"\\\"\"\"") {
                            4
                        } else {
                            1
                        };
                    }
                    i += 3;
                }
                b'"' => {
                    i += 1;
                    while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'{' | b'[' | b'(' => {
                    depth += 1;
                    nesting = nesting.max(depth);
                    i += 1;
                }
                b'}' | b']' | b')' => {
                    depth = depth.saturating_sub(1);
                    i += 1;
                }
                b'.' if bytes[i..].starts_with(b"...") => i += 3,
                b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'+' => {
                    i += 1;
                    while i < bytes.len()
                        && matches!(bytes[i], b'_' | b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'+' | b'-')
                    {
                        i += 1;
                    }
                }
                _ => i += 1,
            }
            tokens += 1;
        }
        Self { tokens, nesting }
    }
}

/// Adds `value`'s size (as JSON, about) to `size`, stopping past `max`; returns its
/// nesting (a scalar is 1).
fn measure(value: &Value, depth: usize, size: &mut usize, max: usize) -> usize {
    if *size > max || depth > 1_000 {
        return depth;
    }
    match value {
        Value::List(items) => {
            *size += 2;
            items
                .iter()
                .map(|item| measure(item, depth + 1, size, max))
                .fold(depth, usize::max)
        }
        Value::Object(fields) => {
            *size += 2;
            fields
                .iter()
                .map(|(name, item)| {
                    *size += name.len() + 4;
                    measure(item, depth + 1, size, max)
                })
                .fold(depth, usize::max)
        }
        Value::String(text) => {
            *size += text.len() + 3;
            depth
        }
        Value::Binary(bytes) => {
            *size += bytes.len();
            depth
        }
        _ => {
            *size += 8;
            depth
        }
    }
}

/// The parsed document's walk for [`Limits::check_document`].
struct DocumentCheck<'a> {
    limits: &'a Limits,
    document: &'a ExecutableDocument,
    known: &'a BTreeMap<String, MetaDirective>,
    /// Each fragment's spread nesting, once measured.
    depths: HashMap<&'a str, usize>,
}

impl<'a> DocumentCheck<'a> {
    fn directives(
        &self,
        directives: &[Positioned<Directive>],
        location: Location,
    ) -> Result<(), ApiError> {
        if directives.len() > self.limits.max_directives {
            return Err(over(
                "maxDirectives",
                "directives on one location:",
                directives.len(),
                self.limits.max_directives,
            ));
        }
        for directive in directives {
            let name = directive.node.name.node.as_str();
            match self.known.get(name) {
                None => {
                    return Err(ApiError::bad_input(
                        "query",
                        format!("Unknown directive \"@{name}\""),
                    ));
                }
                Some(known) if !known.locations.contains(&location) => {
                    return Err(ApiError::bad_input(
                        "query",
                        format!("Directive \"@{name}\" may not be used on {location:?}"),
                    ));
                }
                Some(_) => {}
            }
            for (_, value) in &directive.node.arguments {
                self.input(&value.node, 1)?;
            }
        }
        Ok(())
    }

    fn variable(&self, variable: &Positioned<VariableDefinition>) -> Result<(), ApiError> {
        self.directives(&variable.node.directives, Location::VARIABLE_DEFINITION)?;
        if let Some(default) = &variable.node.default_value {
            self.input(&default.node.clone().into_value(), 1)?;
        }
        Ok(())
    }

    /// An argument's value: lists and input objects nest at most `max_input_depth` deep.
    fn input(&self, value: &async_graphql_value::Value, depth: usize) -> Result<(), ApiError> {
        use async_graphql_value::Value as V;
        if depth > self.limits.max_input_depth {
            return Err(over(
                "maxInputDepth",
                "input nesting",
                depth,
                self.limits.max_input_depth,
            ));
        }
        match value {
            V::List(items) => items
                .iter()
                .try_for_each(|item| self.input(item, depth + 1)),
            V::Object(fields) => fields
                .values()
                .try_for_each(|item| self.input(item, depth + 1)),
            _ => Ok(()),
        }
    }

    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<(), ApiError> {
        let mut keys: HashMap<&str, usize> = HashMap::new();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let seen = keys.entry(field.response_key().node.as_str()).or_default();
                    *seen += 1;
                    if *seen > self.limits.max_repeats {
                        return Err(over(
                            "maxRepeats",
                            &format!(
                                "selections of `{}` in one selection set:",
                                field.response_key().node
                            ),
                            *seen,
                            self.limits.max_repeats,
                        ));
                    }
                    self.directives(&field.directives, Location::FIELD)?;
                    for (_, value) in &field.arguments {
                        self.input(&value.node, 1)?;
                    }
                    self.selection_set(&field.selection_set.node)?;
                }
                Selection::FragmentSpread(spread) => {
                    self.directives(&spread.node.directives, Location::FRAGMENT_SPREAD)?;
                    let depth = 1 + self.fragment_depth(&spread.node.fragment_name.node);
                    if depth > self.limits.max_fragment_depth {
                        return Err(over(
                            "maxFragmentDepth",
                            "fragment nesting",
                            depth,
                            self.limits.max_fragment_depth,
                        ));
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.directives(&inline.node.directives, Location::INLINE_FRAGMENT)?;
                    self.selection_set(&inline.node.selection_set.node)?;
                }
            }
        }
        Ok(())
    }

    /// How deeply fragment spreads nest inside fragment `name` (0 without any), each
    /// fragment measured once; a cycle counts as too deep (validation names it later).
    fn fragment_depth(&mut self, name: &str) -> usize {
        if let Some(depth) = self.depths.get(name) {
            return *depth;
        }
        let Some((key, fragment)) = self.document.fragments.get_key_value(name) else {
            return 0;
        };
        // Marked first: met again while measuring, it is a cycle.
        self.depths.insert(key.as_str(), usize::MAX / 2);
        let mut names = Vec::new();
        spread_names(&fragment.node.selection_set.node, &mut names);
        let depth = names
            .into_iter()
            .map(|inner| 1 + self.fragment_depth(inner))
            .max()
            .unwrap_or(0);
        self.depths.insert(key.as_str(), depth);
        depth
    }
}

/// The fragments spread anywhere below `set` (not through other fragments).
fn spread_names<'a>(set: &'a SelectionSet, names: &mut Vec<&'a str>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => spread_names(&field.node.selection_set.node, names),
            Selection::InlineFragment(inline) => {
                spread_names(&inline.node.selection_set.node, names);
            }
            Selection::FragmentSpread(spread) => {
                names.push(spread.node.fragment_name.node.as_str())
            }
        }
    }
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension { limits: *self })
    }
}

struct LimitsExtension {
    limits: Limits,
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
        // Usually checked already by the transport (before it looks into the document),
        // but every way into the executor passes here.
        self.limits.admit(query, variables).map_err(refusal)?;
        let document = next.run(ctx, query, variables).await.map_err(with_code)?;
        let known = &ctx.schema_env.registry.directives;
        self.limits
            .check_document(&document, known)
            .map_err(refusal)?;
        let shape = Shape::of(&document, variables);
        self.limits.check(&shape).map_err(refusal)?;
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
