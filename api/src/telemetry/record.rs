//! What the GraphQL handler tells about the request it serves: the operation, who asked,
//! how it ended, what it cost, how many SQL statements it ran. Carried in a task-local set
//! by [`super::layer`], so the handler needs no extra arguments, error bodies can carry the
//! request id, and the request's usage log reads how every path ended.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use async_graphql::{BatchRequest, Value};

use crate::auth::Principal;

tokio::task_local! {
    static CURRENT: Arc<RequestRecord>;
}

/// The record of one HTTP request.
#[derive(Debug)]
pub struct RequestRecord {
    id: String,
    operation: OnceLock<String>,
    outcome: OnceLock<&'static str>,
    code: OnceLock<String>,
    principal: OnceLock<Principal>,
    cost: AtomicU64,
    statements: AtomicUsize,
}

/// Outcomes are error codes; anything else counts as this, so the label stays bounded.
const OTHER_ERROR: &str = "ERROR";

/// The codes an outcome may be (DESIGN.md section 5), plus `OK`.
const OUTCOMES: &[&str] = &[
    "OK",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "THROTTLED",
    "INTERNAL",
    "PERSISTED_QUERY_NOT_FOUND",
];

impl RequestRecord {
    /// A record for the request with this id.
    pub fn new(id: String) -> Self {
        Self {
            id,
            operation: OnceLock::new(),
            outcome: OnceLock::new(),
            code: OnceLock::new(),
            principal: OnceLock::new(),
            cost: AtomicU64::new(0),
            statements: AtomicUsize::new(0),
        }
    }

    /// The request id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The GraphQL operation's name, when the request was one.
    pub fn operation(&self) -> Option<&str> {
        self.operation.get().map(String::as_str)
    }

    /// How the GraphQL request ended (`OK` or the first error's code), when it said.
    pub fn outcome(&self) -> Option<&'static str> {
        self.outcome.get().copied()
    }

    /// How the request ended as the handler said it: `OK` or the first error's code (not
    /// folded into the bounded set of [`RequestRecord::outcome`]).
    pub fn code(&self) -> Option<&str> {
        self.code.get().map(String::as_str)
    }

    /// Who asked, once their credentials were checked.
    pub fn principal(&self) -> Option<&Principal> {
        self.principal.get()
    }

    /// The actual cost of the operations that ran, in throttle points.
    pub fn cost(&self) -> u64 {
        self.cost.load(Ordering::Relaxed)
    }

    /// The SQL statements the request ran.
    pub fn statements(&self) -> usize {
        self.statements.load(Ordering::Relaxed)
    }
}

/// Runs `future` with `record` as the current request's.
pub(super) async fn scope<F: Future>(record: Arc<RequestRecord>, future: F) -> F::Output {
    CURRENT.scope(record, future).await
}

fn with<T>(f: impl FnOnce(&RequestRecord) -> T) -> Option<T> {
    CURRENT.try_with(|record| f(record)).ok()
}

/// The current request's record (none outside [`super::layer`]).
pub fn current() -> Option<Arc<RequestRecord>> {
    CURRENT.try_with(Arc::clone).ok()
}

/// Notes who asked.
pub fn principal(principal: &Principal) {
    with(|record| {
        let _ = record.principal.set(principal.clone());
    });
}

/// Adds an operation's actual cost.
pub fn cost(points: u64) {
    with(|record| record.cost.fetch_add(points, Ordering::Relaxed));
}

/// The current request's id.
pub fn request_id() -> Option<String> {
    with(|record| record.id.clone())
}

/// Notes which operation `batch` runs: the operation name, the first operation's name in
/// the document, `anonymous`, or `batch`. The text is scanned, not parsed (a compiled
/// plan answers without parsing).
pub fn operation(batch: &BatchRequest) {
    let name = match batch {
        BatchRequest::Single(request) => operation_name(request).to_owned(),
        BatchRequest::Batch(_) => "batch".to_owned(),
    };
    with(|record| {
        let _ = record.operation.set(name);
    });
}

/// The name of `request`'s operation: its operation name, the first operation's name in
/// the document, or `anonymous`.
pub fn operation_name(request: &async_graphql::Request) -> &str {
    match &request.operation_name {
        Some(name) => name,
        None => first_operation_name(&request.query).unwrap_or("anonymous"),
    }
}

/// `OK` when `response` has no error, else its first error's code (`ERROR` when it has
/// none).
pub fn status_of(response: &async_graphql::Response) -> &str {
    match response.errors.first() {
        None => "OK",
        Some(error) => error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .and_then(|code| match code {
                Value::String(code) => Some(code.as_str()),
                _ => None,
            })
            .unwrap_or(OTHER_ERROR),
    }
}

/// Notes the end of a GraphQL response: its outcome and statements; its errors get the
/// request id in `extensions.requestId`.
pub fn response(response: &mut async_graphql::Response, statements: usize) {
    let id = request_id();
    let code = status_of(response).to_owned();
    if let Some(id) = id {
        for error in &mut response.errors {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("requestId", id.clone());
        }
    }
    finished(&code, statements);
}

/// Notes a request that ended with `code` before or instead of the executor; returns the
/// error's `extensions` (the code and the request id).
pub fn error_extensions(code: &str) -> serde_json::Value {
    finished(code, 0);
    match request_id() {
        Some(id) => serde_json::json!({ "code": code, "requestId": id }),
        None => serde_json::json!({ "code": code }),
    }
}

/// Notes how the request ended and the statements it ran (the first report wins).
pub fn finished(code: &str, statements: usize) {
    let outcome = OUTCOMES
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or(OTHER_ERROR);
    with(|record| {
        let _ = record.outcome.set(outcome);
        let _ = record.code.set(code.to_owned());
        record.statements.fetch_add(statements, Ordering::Relaxed);
    });
}

/// The name of the first operation in `query`, if it is named: `query Name`,
/// `mutation Name(...)`, `subscription Name`. Comments and whitespace are skipped.
fn first_operation_name(query: &str) -> Option<&str> {
    let mut rest = query;
    let mut words = Vec::with_capacity(2);
    while words.len() < 2 {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',' || c == '\u{feff}');
        if let Some(comment) = rest.strip_prefix('#') {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
            continue;
        }
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        words.push(&rest[..end]);
        rest = &rest[end..];
    }
    match words.as_slice() {
        ["query" | "mutation" | "subscription", name] => Some(name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::first_operation_name;

    #[test]
    fn the_first_operation_name_is_read_without_parsing() {
        assert_eq!(
            first_operation_name("query Shops { shops { totalCount } }"),
            Some("Shops")
        );
        assert_eq!(
            first_operation_name("# hi\n mutation Make($a: Int) { x }"),
            Some("Make")
        );
        assert_eq!(first_operation_name("{ shops { totalCount } }"), None);
        assert_eq!(first_operation_name("query { shops { totalCount } }"), None);
        assert_eq!(first_operation_name("query($a: Int) { a }"), None);
    }
}
