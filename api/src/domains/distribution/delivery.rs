//! The webhook deliverer, a task of `stratix serve`: it works through `webhook_deliveries`
//! (the outbox [`super::webhooks::emit`] fills), POSTing each due delivery to its endpoint,
//! signed `Stratix-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
//!
//! - **Claims**: a short transaction takes up to [`BATCH`] due deliveries
//!   (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer serialises claims)
//!   and stamps each with a fresh `lease_id` and `next_attempt_at` one lease ahead, so no
//!   other instance takes it while it is being sent. The lease outlasts the HTTP timeout,
//!   so two sends of one delivery never overlap.
//! - **Results**: each attempt is recorded in its own transaction, only while the lease is
//!   still this deliverer's: a 2xx is `succeeded`; anything else is retried after an
//!   exponential backoff with jitter, and after [`MAX_ATTEMPTS`] it is `failed`. Every
//!   attempt is appended to `attempt_log` (time, HTTP status, duration, error).
//! - **Restarts**: nothing is held in memory between passes. A delivery whose sender died
//!   after claiming it becomes due again when its lease runs out: at least once.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType, Order, Query};
use sea_orm::{ConnectionTrait as _, DatabaseConnection};
use serde_json::{Value as Json, json};
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::webhooks::SIGNING_SECRET;
use crate::config::parse_duration;
use crate::crypto::KeyRing;
use crate::domains::ServiceWork;

/// Attempts before a delivery is given up as `failed`.
pub const MAX_ATTEMPTS: i32 = 8;
/// Deliveries claimed at once by one deliverer.
pub const BATCH: u64 = 16;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// The most of an error or response kept in the log, in characters.
const MAX_ERROR: usize = 500;

/// How deliveries are sent and retried (flags and environment variables of `serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct DeliveryConfig {
    /// How long a webhook receiver has to answer (connect and response): 5s, 500ms, ...
    #[arg(long = "webhook-timeout", env = "STRATIX_WEBHOOK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The wait before a failed delivery's first retry; each later one doubles it (times a
    /// random 0.5 to 1.5), up to an hour.
    #[arg(long = "webhook-backoff", env = "STRATIX_WEBHOOK_BACKOFF", default_value = "30s", value_parser = parse_duration)]
    pub backoff: Duration,
    /// How often the deliverer looks for due deliveries when it found none.
    #[arg(long = "webhook-poll", env = "STRATIX_WEBHOOK_POLL", default_value = "1s", value_parser = parse_duration)]
    pub poll: Duration,
    /// Whether receivers may be on loopback addresses (`serve` copies the deployment's
    /// `webhooks_allow_loopback`).
    #[arg(skip)]
    pub allow_loopback: bool,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            backoff: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            allow_loopback: false,
        }
    }
}

impl DeliveryConfig {
    /// How long a claim holds a delivery: past the HTTP timeout and the time to record
    /// the result, so a delivery is never sent by two deliverers at once.
    pub fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }

    /// The wait after the `attempts`-th failed attempt: `backoff` doubled per earlier
    /// attempt, capped at an hour, times `jitter` (0.5 to 1.5).
    pub fn backoff_after(&self, attempts: i32, jitter: f64) -> Duration {
        let doublings = Ord::min(u32::try_from(attempts.saturating_sub(1)).unwrap_or(0), 20);
        let base = self.backoff.saturating_mul(1 << doublings).min(MAX_BACKOFF);
        base.mul_f64(jitter.clamp(0.5, 1.5))
    }
}

/// The running deliverer.
pub struct Deliverer {
    task: JoinHandle<()>,
}

impl Deliverer {
    /// Starts delivering from `db`, opening signing secrets with `encryption`.
    pub fn start(db: DatabaseConnection, encryption: KeyRing, config: DeliveryConfig) -> Self {
        Self {
            task: tokio::spawn(run(db, encryption, config)),
        }
    }

    /// Stops it: a send in progress is abandoned (its claim runs out and another pass
    /// sends it again).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn run(db: DatabaseConnection, encryption: KeyRing, config: DeliveryConfig) {
    let client = match client(&config) {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "webhook deliverer cannot start");
            return;
        }
    };
    loop {
        match deliver_due(&db, &encryption, &config, &client).await {
            // A full batch: more may be due at once.
            Ok(sent) if sent as u64 == BATCH => continue,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "webhook delivery pass failed");
            }
        }
        tokio::time::sleep(config.poll).await;
    }
}

/// The HTTP client deliveries go out with: the timeout, no redirects (a receiver cannot
/// bounce the request elsewhere), no proxy from the environment, and host names resolved
/// to public addresses only ([`PublicOnly`]).
pub fn client(config: &DeliveryConfig) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(std::sync::Arc::new(PublicOnly {
            allow_loopback: config.allow_loopback,
        }))
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Stratix-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Resolves endpoint host names to their public addresses only: a name that was public
/// when the endpoint was made cannot later be pointed at the service's own network (URLs
/// with an address in them were checked when they were set).
struct PublicOnly {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| match super::webhooks::reach(a.ip()) {
                    None => true,
                    Some(loopback) => loopback && allow_loopback,
                })
                .collect();
            if addresses.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A claimed delivery, with what sending it takes.
struct Claimed {
    id: Uuid,
    lease: Uuid,
    event: String,
    event_id: Option<Uuid>,
    payload: Json,
    attempts: i32,
    log: Json,
    url: String,
    secret: Vec<u8>,
    active: bool,
}

/// One pass: claims the due deliveries and sends them; how many were claimed.
pub async fn deliver_due(
    db: &DatabaseConnection,
    encryption: &KeyRing,
    config: &DeliveryConfig,
    client: &reqwest::Client,
) -> anyhow::Result<usize> {
    let claimed = claim(db, config.lease()).await?;
    let count = claimed.len();
    let sends = claimed.into_iter().map(|delivery| async move {
        let outcome = send(&delivery, encryption, client).await;
        if let Err(error) = record(db, config, &delivery, outcome).await {
            tracing::warn!(
                delivery = %delivery.id,
                error = format!("{error:#}"),
                "recording a webhook attempt failed"
            );
        }
    });
    futures_util::future::join_all(sends).await;
    Ok(count)
}

/// Takes up to [`BATCH`] due deliveries for `lease`.
async fn claim(db: &DatabaseConnection, lease: Duration) -> anyhow::Result<Vec<Claimed>> {
    let work = ServiceWork::begin(db).await?;
    let claimed = async {
        let ctx = work.ctx();
        let now = Utc::now();
        let mut due = Query::select();
        due.from("webhook_deliveries")
            .column("id")
            .and_where(Expr::col("status").eq("pending"))
            .and_where(Expr::col("next_attempt_at").lte(now))
            .order_by("next_attempt_at", Order::Asc)
            .limit(BATCH)
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        let ids = ctx
            .db
            .query_all(&due)
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<Uuid>(0))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease_id = Uuid::new_v4();
        let mut take = Query::update();
        take.table("webhook_deliveries")
            .value("lease_id", lease_id)
            .value("next_attempt_at", now + lease)
            .and_where(Expr::col("id").is_in(ids));
        ctx.db.execute(&take).await?;
        let d = |c: &'static str| Expr::col(("webhook_deliveries", c));
        let mut select = Query::select();
        select
            .from("webhook_deliveries")
            .inner_join(
                "webhook_endpoints",
                Expr::col(("webhook_endpoints", "id"))
                    .equals(("webhook_deliveries", "endpoint_id")),
            )
            .exprs([
                d("id"),
                d("event"),
                d("event_id"),
                d("payload"),
                d("attempts"),
                d("attempt_log"),
                Expr::col(("webhook_endpoints", "url")),
                Expr::col(("webhook_endpoints", "secret_enc")),
                Expr::col(("webhook_endpoints", "active")),
            ])
            .and_where(d("lease_id").eq(lease_id));
        ctx.db
            .query_all(&select)
            .await?
            .iter()
            .map(|row| {
                Ok(Claimed {
                    id: row.try_get_by_index(0)?,
                    lease: lease_id,
                    event: row.try_get_by_index(1)?,
                    event_id: row.try_get_by_index(2)?,
                    payload: row.try_get_by_index(3)?,
                    attempts: row.try_get_by_index(4)?,
                    log: row.try_get_by_index(5)?,
                    url: row.try_get_by_index(6)?,
                    secret: row.try_get_by_index(7)?,
                    active: row.try_get_by_index(8)?,
                })
            })
            .collect::<Result<Vec<_>, sea_orm::DbErr>>()
    }
    .await;
    work.finish(claimed.is_ok()).await?;
    Ok(claimed?)
}

/// How an attempt went.
struct Outcome {
    at: DateTime<Utc>,
    status: Option<u16>,
    duration: Duration,
    error: Option<String>,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.error.is_none()
    }
}

/// The `Stratix-Signature` header of `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(crate::webhooks::digest(secret, &signed))
    )
}

async fn send(delivery: &Claimed, encryption: &KeyRing, client: &reqwest::Client) -> Outcome {
    let at = Utc::now();
    let started = Instant::now();
    let failed = |error: String| Outcome {
        at,
        status: None,
        duration: started.elapsed(),
        error: Some(error),
    };
    if !delivery.active {
        return failed("the endpoint is switched off".to_owned());
    }
    let secret = match encryption.decrypt_text(SIGNING_SECRET, &delivery.secret) {
        Ok(secret) => secret,
        Err(error) => {
            tracing::error!(delivery = %delivery.id, %error, "cannot open a webhook signing secret");
            return failed("the signing secret cannot be opened".to_owned());
        }
    };
    let body = match serde_json::to_vec(&delivery.payload) {
        Ok(body) => body,
        Err(error) => return failed(error.to_string()),
    };
    let mut request = client
        .post(&delivery.url)
        .header("content-type", "application/json")
        .header(
            "stratix-signature",
            signature(secret.expose().as_bytes(), at.timestamp(), &body),
        )
        .header("stratix-event", &delivery.event)
        .header("stratix-delivery-id", delivery.id.to_string());
    if let Some(event_id) = delivery.event_id {
        request = request.header("stratix-event-id", event_id.to_string());
    }
    match request.body(body).send().await {
        Ok(response) => {
            let status = response.status();
            Outcome {
                at,
                status: Some(status.as_u16()),
                duration: started.elapsed(),
                error: (!status.is_success()).then(|| format!("HTTP {status}")),
            }
        }
        Err(error) => failed(shorten(&chain(&error))),
    }
}

/// An error with its causes, `outer: inner: ...` (reqwest's own text names no cause).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}

fn shorten(text: &str) -> String {
    text.chars().take(MAX_ERROR).collect()
}

/// Records `outcome` while `delivery`'s lease is still ours (else another deliverer took
/// it over, and its result stands).
async fn record(
    db: &DatabaseConnection,
    config: &DeliveryConfig,
    delivery: &Claimed,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let attempts = delivery.attempts + 1;
    let mut log = delivery.log.as_array().cloned().unwrap_or_default();
    log.push(json!({
        "attempt": attempts,
        "at": outcome.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "status_code": outcome.status,
        "duration_ms": u64::try_from(outcome.duration.as_millis()).unwrap_or(u64::MAX),
        "error": outcome.error,
    }));
    let mut update = Query::update();
    update
        .table("webhook_deliveries")
        .value("attempts", attempts)
        .value("attempt_log", Json::Array(log))
        .value("status_code", outcome.status.map(i32::from))
        .value("last_error", outcome.error.clone())
        .value("lease_id", None::<Uuid>)
        .value("updated_at", Utc::now())
        .and_where(Expr::col("id").eq(delivery.id))
        .and_where(Expr::col("lease_id").eq(delivery.lease));
    if outcome.succeeded() {
        update
            .value("status", "succeeded")
            .value("delivered_at", Utc::now())
            .value("next_attempt_at", None::<DateTime<Utc>>);
    } else if attempts >= MAX_ATTEMPTS {
        update
            .value("status", "failed")
            .value("next_attempt_at", None::<DateTime<Utc>>);
    } else {
        let jitter = 0.5
            + f64::from(u32::from_le_bytes(crate::crypto::random_bytes())) / f64::from(u32::MAX);
        let wait = config.backoff_after(attempts, jitter);
        update.value(
            "next_attempt_at",
            Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1)),
        );
    }
    let work = ServiceWork::begin(db).await?;
    let done = work.ctx().db.execute(&update).await;
    work.finish(done.is_ok()).await?;
    if done?.rows_affected() == 0 {
        tracing::warn!(delivery = %delivery.id, "a webhook delivery's claim ran out before its result was recorded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_an_hour() {
        let config = DeliveryConfig::default();
        assert_eq!(config.backoff_after(1, 1.0), Duration::from_secs(30));
        assert_eq!(config.backoff_after(3, 1.0), Duration::from_secs(120));
        assert_eq!(config.backoff_after(3, 0.5), Duration::from_secs(60));
        assert_eq!(config.backoff_after(7, 1.5), Duration::from_secs(2880));
        assert_eq!(config.backoff_after(30, 1.0), MAX_BACKOFF);
        assert!(config.lease() > config.timeout);
    }

    #[tokio::test]
    async fn names_resolving_to_private_addresses_are_not_called() {
        let refused = client(&DeliveryConfig::default())
            .unwrap()
            .post("http://localhost:9/hook")
            .send()
            .await
            .unwrap_err();
        let text = chain(&refused);
        assert!(
            text.contains("localhost resolves to no public address"),
            "{text}"
        );
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let one = signature(b"whsec_x", 1_700_000_000, b"{}");
        assert!(one.starts_with("t=1700000000,v1="));
        assert_eq!(one.len(), "t=1700000000,v1=".len() + 64);
        assert_ne!(one, signature(b"whsec_x", 1_700_000_001, b"{}"));
        assert_ne!(one, signature(b"whsec_x", 1_700_000_000, b"{ }"));
        assert_ne!(one, signature(b"whsec_y", 1_700_000_000, b"{}"));
    }
}
