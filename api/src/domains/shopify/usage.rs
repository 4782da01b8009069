//! Shops' API usage (`usage_logs`): one row per GraphQL request a shop makes with its
//! session token, over HTTP or a WebSocket: the operation, the method, the HTTP status,
//! `OK` or the first error's code, the request's actual cost in throttle points and how
//! long it took. Other principals' requests are not logged here.
//!
//! Rows are noted on the request path into a bounded queue in memory ([`UsageLogs`], a
//! [`WriteQueue`]) and written in batches by a task of `stratix serve` every
//! [`WRITE_EVERY`] and once more at shutdown: logging never fails or slows a request. A full
//! queue drops the new row and counts it (`stratix_usage_logs_dropped_total`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use sea_orm::sea_query::{Expr, InsertStatement, Query};
use uuid::Uuid;

use crate::auth::Principal;
use crate::domains::queue::{Queued, WriteQueue, write_every};
use crate::error::{ApiError, ApiResult};

/// The most requests waiting in memory.
pub const CAPACITY: usize = 100_000;

/// How often queued requests are written.
pub const WRITE_EVERY: Duration = Duration::from_secs(1);

/// The longest operation name or status stored, in characters.
const MAX_TEXT: usize = 128;

/// How a request came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `POST /graphql`.
    Post,
    /// `GET /graphql?query=...`.
    Get,
    /// An operation on a WebSocket connection.
    WebSocket,
}

impl Method {
    /// The method as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
            Self::WebSocket => "WS",
        }
    }
}

/// One request, as the handler that served it saw it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The operation's name (`anonymous` when it has none, `batch` for several).
    pub operation: &'a str,
    /// How it came.
    pub method: Method,
    /// The HTTP status answered (200 for WebSocket operations).
    pub http_status: u16,
    /// `OK`, or the first error's code.
    pub status: &'a str,
    /// Its actual cost in throttle points (0 when it was refused before it ran).
    pub cost: u64,
    /// From its arrival to its answer.
    pub duration: Duration,
}

/// One logged request of a shop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageLog {
    /// The shop that asked.
    pub shop: Uuid,
    /// The operation.
    pub endpoint: String,
    /// How it came.
    pub method: Method,
    /// The HTTP status.
    pub status_code: u16,
    /// `OK` or the first error's code.
    pub status: String,
    /// Its actual cost.
    pub cost: u64,
    /// How long it took.
    pub duration: Duration,
    /// When it ended.
    pub at: DateTime<Utc>,
}

/// The shops' requests waiting to be written (shared by every request of the process).
pub type UsageLogs = WriteQueue<UsageLog>;

impl WriteQueue<UsageLog> {
    /// Queues the log of `request` when `principal` is a shop; anyone else's is not logged.
    pub fn request(&self, principal: &Principal, request: Request<'_>) {
        let Principal::Shop { id } = principal else {
            return;
        };
        self.note(UsageLog {
            shop: *id,
            endpoint: bounded(request.operation),
            method: request.method,
            status_code: request.http_status,
            status: bounded(request.status),
            cost: request.cost,
            duration: request.duration,
            at: Utc::now(),
        });
    }
}

/// `text`, cut to [`MAX_TEXT`] characters.
fn bounded(text: &str) -> String {
    text.chars().take(MAX_TEXT).collect()
}

impl Queued for UsageLog {
    const CAPACITY: usize = CAPACITY;
    const WHAT: &'static str = "shops' usage logs";

    fn dropped(n: usize) {
        crate::telemetry::metrics::usage_logs_dropped(n);
    }

    fn insert(logs: &[Self]) -> ApiResult<InsertStatement> {
        let mut insert = Query::insert();
        insert.into_table("usage_logs").columns([
            "id",
            "shop_id",
            "endpoint",
            "method",
            "status_code",
            "status",
            "cost",
            "duration_ms",
            "created_at",
        ]);
        for log in logs {
            insert
                .values([
                    Expr::val(Uuid::new_v4()),
                    Expr::val(log.shop),
                    Expr::val(log.endpoint.as_str()),
                    Expr::val(log.method.as_str()),
                    // The table's check: 100 to 599.
                    Expr::val(i32::from(log.status_code.clamp(100, 599))),
                    Expr::val(log.status.as_str()),
                    Expr::val(i32::try_from(log.cost).unwrap_or(i32::MAX)),
                    Expr::val(i32::try_from(log.duration.as_millis()).unwrap_or(i32::MAX)),
                    Expr::val(log.at),
                ])
                .map_err(|e| ApiError::Internal(e.to_string()))?;
        }
        Ok(insert)
    }
}

/// The usage log writer, a task of `stratix serve` (every instance writes its own queue).
pub async fn write_usage_logs(logs: UsageLogs, db: DatabaseConnection) {
    write_every(logs, db, WRITE_EVERY).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> Request<'static> {
        Request {
            operation: "Products",
            method: Method::Post,
            http_status: 200,
            status: "OK",
            cost: 12,
            duration: Duration::from_millis(3),
        }
    }

    #[test]
    fn only_shops_requests_are_logged() {
        let logs = UsageLogs::default();
        let shop = Uuid::new_v4();
        logs.request(&Principal::Anonymous, request());
        logs.request(&Principal::Service, request());
        logs.request(&Principal::Storefront { shop }, request());
        assert_eq!(logs.pending(), 0);
        logs.request(&Principal::Shop { id: shop }, request());
        assert_eq!(logs.pending(), 1);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let logs = UsageLogs::with_capacity(2);
        let shop = Principal::Shop { id: Uuid::new_v4() };
        for _ in 0..5 {
            logs.request(&shop, request());
        }
        assert_eq!((logs.pending(), logs.dropped()), (2, 3));
    }

    #[test]
    fn long_names_are_cut() {
        assert_eq!(bounded(&"é".repeat(300)).chars().count(), MAX_TEXT);
        assert_eq!(bounded("Products"), "Products");
    }
}
