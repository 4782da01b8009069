//! Cost throttling, as Shopify's Admin API does it: a leaky bucket of points per principal
//! (a shop, a signed-in user, an API key; anonymous callers by client address), charged a
//! request's requested cost before it runs and refunded the difference to its actual cost
//! after (see [`crate::graphql::cost`]). A request that does not fit is refused before any
//! SQL runs for it: `THROTTLED` with `extensions.retryAfter` (seconds), or
//! `MAX_COST_EXCEEDED` when one operation costs more than the bucket ever holds. The
//! non-GraphQL endpoints ([`guard`]) answer 429 with `Retry-After`.
//!
//! Sign-up, sign-in and invitation acceptance also have their own limits per client address
//! and per email (or user), counted for every attempt before anything is looked up, so a
//! known and an unknown email are refused alike ([`attempts`]).
//!
//! The buckets live in this instance's memory: with several instances behind a load
//! balancer each holds its own, so a principal's budget is per instance. Memory is bounded:
//! a bucket that has refilled is forgotten (it would be made again full), and past
//! `max_buckets` the fullest are forgotten first.

pub mod attempts;
pub mod bucket;

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use entity::shopify::shops;
use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect};
use serde_json::json;
use uuid::Uuid;

pub use attempts::Attempt;
pub use bucket::Clock;
use bucket::{Bucket, Shortfall};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// How often a shop's plan is read again (its bucket's size follows the plan).
const PLAN_TTL: Duration = Duration::from_secs(60);

/// How many charges between two sweeps of refilled buckets.
const SWEEP_EVERY: u64 = 1024;

/// The throttle's settings (`STRATIX_THROTTLE_*`, `STRATIX_AUTH_ATTEMPTS_*`).
#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Whether GraphQL requests and the webhooks are throttled at all.
    pub enabled: bool,
    /// The points a bucket holds (Shopify: 1,000).
    pub maximum: f64,
    /// The points restored per second (Shopify: 50).
    pub restore_rate: f64,
    /// Multipliers of both, by shop plan (`shops.plan`); other plans get 1.
    pub plans: Vec<(String, f64)>,
    /// The most buckets kept in memory.
    pub max_buckets: usize,
    /// Sign-up, sign-in and invitation attempts per client address per window.
    pub attempts_per_address: u32,
    /// Attempts per email (sign-up, sign-in) or user (invitations) per window.
    pub attempts_per_email: u32,
    /// The window the attempt limits refill over.
    pub attempts_window: Duration,
    /// The header a trusted proxy puts the client's address in (its right-most entry is
    /// read, as in `X-Forwarded-For`); `None`: the peer's address.
    pub client_address_header: Option<String>,
    /// The clock buckets refill by.
    pub clock: Clock,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            maximum: 1000.0,
            restore_rate: 50.0,
            plans: vec![("advanced".to_owned(), 2.0), ("plus".to_owned(), 10.0)],
            max_buckets: 100_000,
            attempts_per_address: 30,
            attempts_per_email: 10,
            attempts_window: Duration::from_secs(600),
            client_address_header: None,
            clock: Clock::System,
        }
    }
}

/// Reads `plan=multiplier,...` (`advanced=2,plus=10`).
pub fn parse_plans(text: &str) -> Result<Vec<(String, f64)>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (plan, factor) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?} is not like plus=10"))?;
            let factor: f64 = factor
                .trim()
                .parse()
                .ok()
                .filter(|f: &f64| f.is_finite() && *f > 0.0)
                .ok_or_else(|| format!("{item:?}: the multiplier must be a positive number"))?;
            Ok((plan.trim().to_owned(), factor))
        })
        .collect()
}

/// Whose bucket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Key {
    Shop(Uuid),
    User(Uuid),
    /// An API key (`api_keys.id`) or an integration's (`external_integrations.id`): each
    /// key its own bucket.
    Credential(Uuid),
    /// Anonymous callers (and webhooks), by address (IPv6 by /64).
    Address(IpAddr),
    AttemptAddress(IpAddr),
    /// An email, hashed with this process's random key.
    AttemptEmail(u64),
    AttemptUser(Uuid),
}

struct Entry {
    bucket: Bucket,
    /// When a shop's plan was last read.
    sized_at: Duration,
}

/// The buckets of this instance. Clones share them.
#[derive(Clone)]
pub struct Throttle(Arc<Inner>);

struct Inner {
    config: ThrottleConfig,
    buckets: Mutex<HashMap<Key, Entry>>,
    charges: AtomicU64,
    emails: std::collections::hash_map::RandomState,
}

/// Where a request stands with the throttle: the points it was charged.
#[derive(Clone)]
pub struct Charge {
    metered: Option<(Throttle, Key)>,
}

impl std::fmt::Debug for Charge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = self.metered.as_ref().map(|(_, key)| key);
        f.debug_struct("Charge").field("metered", &key).finish()
    }
}

/// `throttleStatus`: the principal's bucket after the request.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleStatus {
    /// The points the bucket holds.
    pub maximum_available: f64,
    /// The points available now.
    pub currently_available: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// `extensions.cost` of one response.
#[derive(Clone, Copy, Debug)]
pub struct CostReport {
    /// The cost calculated before the request ran.
    pub requested: u64,
    /// The cost of what it returned; `None` when it did not run.
    pub actual: Option<u64>,
    /// The bucket; `None` for the unthrottled `service_role`.
    pub status: Option<ThrottleStatus>,
}

/// A request the throttle refused, and the cost to report with the refusal.
#[derive(Debug)]
pub struct Refusal {
    /// `THROTTLED` or `MAX_COST_EXCEEDED`.
    pub error: ApiError,
    /// `extensions.cost`, when it was about cost.
    pub report: Option<CostReport>,
}

impl Refusal {
    /// Whole seconds to wait, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match &self.error {
            ApiError::Exhausted { retry_after, .. } => Some(retry_after_header(*retry_after)),
            _ => None,
        }
    }
}

/// Whole points (`currentlyAvailable` is an integer, as Shopify's).
fn whole(points: f64) -> u64 {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped"
    )]
    let whole = points.floor().max(0.0) as u64;
    whole
}

fn retry_after_header(seconds: f64) -> u64 {
    // An integer for the header (RFC 9110); at least 1, bounded for a zero restore rate.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped"
    )]
    let whole = seconds.ceil().clamp(1.0, 86_400.0) as u64;
    whole
}

impl CostReport {
    /// As JSON, in Shopify's shape.
    pub fn to_json(&self) -> serde_json::Value {
        let mut cost = json!({
            "requestedQueryCost": self.requested,
            "actualQueryCost": self.actual,
        });
        if let Some(status) = &self.status {
            cost["throttleStatus"] = json!({
                "maximumAvailable": status.maximum_available,
                "currentlyAvailable": whole(status.currently_available),
                "restoreRate": status.restore_rate,
            });
        }
        cost
    }

    /// As a GraphQL value, for a response's extensions.
    pub fn to_value(&self) -> async_graphql::Value {
        async_graphql::Value::from_json(self.to_json()).unwrap_or_default()
    }
}

impl Throttle {
    /// Buckets with these settings, none made yet.
    pub fn new(config: ThrottleConfig) -> Self {
        Self(Arc::new(Inner {
            config,
            buckets: Mutex::default(),
            charges: AtomicU64::new(0),
            emails: std::collections::hash_map::RandomState::new(),
        }))
    }

    /// The settings.
    pub fn config(&self) -> &ThrottleConfig {
        &self.0.config
    }

    /// How many buckets are held.
    pub fn buckets(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.0
            .buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The client's address: from the configured proxy header, else the peer's.
    pub fn client_address(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<IpAddr> {
        if let Some(name) = &self.0.config.client_address_header {
            let forwarded = headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .filter_map(|item| item.trim().parse::<IpAddr>().ok())
                .next_back();
            if forwarded.is_some() {
                return forwarded;
            }
        }
        peer.map(|peer| peer.ip())
    }

    /// Charges `principal` the requested cost of each operation of a request, or refuses
    /// it. `db` is read (with the service's rights, at most once a minute per shop) for a
    /// shop's plan.
    pub async fn charge(
        &self,
        db: &DatabaseConnection,
        principal: &Principal,
        client: Option<IpAddr>,
        costs: &[u64],
    ) -> Result<Charge, Refusal> {
        let key = match principal {
            _ if !self.0.config.enabled => None,
            Principal::Service => None,
            Principal::Shop { id } => Some(Key::Shop(*id)),
            Principal::User { key: Some(key), .. } | Principal::Integration { id: key, .. } => {
                Some(Key::Credential(*key))
            }
            Principal::User { id, key: None, .. } => Some(Key::User(*id)),
            // A storefront's visitors each have their own bucket, as anonymous callers do.
            Principal::Anonymous | Principal::Storefront { .. } => {
                Some(Key::Address(network(client)))
            }
        };
        let Some(key) = key else {
            return Ok(Charge { metered: None });
        };
        let factor = match &key {
            Key::Shop(id) => self.plan_factor(db, *id).await,
            _ => None,
        };
        self.take(key, costs, factor)
    }

    /// Takes the points of `costs` from `key`'s bucket (resized by `factor` first, if
    /// given).
    fn take(&self, key: Key, costs: &[u64], factor: Option<f64>) -> Result<Charge, Refusal> {
        let config = &self.0.config;
        let now = config.clock.now();
        let total: u64 = costs.iter().fold(0, |sum, cost| sum.saturating_add(*cost));
        let largest = costs.iter().copied().max().unwrap_or_default();
        let mut buckets = self.lock();
        let entry = buckets.entry(key.clone()).or_insert_with(|| Entry {
            bucket: Bucket::full(config.maximum, config.restore_rate, now),
            sized_at: now,
        });
        if let Some(factor) = factor {
            let bucket = &mut entry.bucket;
            bucket.resize(config.maximum * factor, config.restore_rate * factor, now);
            entry.sized_at = now;
        }
        #[expect(
            clippy::cast_precision_loss,
            reason = "costs far below 2^52, or saturated"
        )]
        let taken = entry.bucket.take(total as f64, now);
        let bucket = entry.bucket;
        let status = status_of(&bucket, now);
        drop(buckets);
        self.after_charge(now);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "bounded"
        )]
        let maximum = bucket.maximum as u64;
        let refused = |error: ApiError, reason: &'static str| {
            crate::telemetry::metrics::throttled(reason);
            Err(Refusal {
                error,
                report: Some(CostReport {
                    requested: total,
                    actual: None,
                    status: Some(status),
                }),
            })
        };
        match taken {
            Ok(()) => Ok(Charge {
                metered: Some((self.clone(), key)),
            }),
            Err(_) if largest > maximum => refused(
                ApiError::MaxCost {
                    cost: largest,
                    maximum,
                },
                "max_cost",
            ),
            // A batch over the maximum in all, each operation within it.
            Err(Shortfall::OverMaximum) => refused(
                ApiError::MaxCost {
                    cost: total,
                    maximum,
                },
                "max_cost",
            ),
            Err(Shortfall::Wait(wait)) => refused(
                ApiError::Exhausted {
                    message: format!(
                        "Throttled: the request costs {total} points and {} are available, \
                         restored at {} per second",
                        whole(status.currently_available),
                        status.restore_rate
                    ),
                    retry_after: (wait * 1000.0).ceil() / 1000.0,
                },
                "cost",
            ),
        }
    }

    /// The multiplier for shop `id`'s plan, when it is time to read it (a new bucket, or
    /// one sized over [`PLAN_TTL`] ago).
    async fn plan_factor(&self, db: &DatabaseConnection, id: Uuid) -> Option<f64> {
        let now = self.0.config.clock.now();
        let fresh = self
            .lock()
            .get(&Key::Shop(id))
            .is_some_and(|entry| now.saturating_sub(entry.sized_at) < PLAN_TTL);
        if fresh {
            return None;
        }
        let plan = shops::Entity::find_by_id(id)
            .select_only()
            .column(shops::Column::Plan)
            .into_tuple::<String>()
            .one(db)
            .await;
        let plan = match plan {
            Ok(plan) => plan.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, shop.id = %id, "throttle: reading the shop's plan failed");
                String::new()
            }
        };
        Some(self.factor_of(&plan))
    }

    /// The multiplier of `plan` (1 for a plan not configured).
    pub fn factor_of(&self, plan: &str) -> f64 {
        self.0
            .config
            .plans
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(plan))
            .map_or(1.0, |(_, factor)| *factor)
    }

    /// Takes `points` from anonymous client `client`'s bucket (the webhooks), or says in
    /// how many seconds there is room.
    pub fn charge_address(&self, client: Option<IpAddr>, points: u64) -> Result<Charge, Refusal> {
        if !self.0.config.enabled {
            return Ok(Charge { metered: None });
        }
        self.take(Key::Address(network(client)), &[points], None)
    }

    /// Counts sign-up, sign-in and invitation `attempts` from `client` against their
    /// limits, or refuses them all (`THROTTLED`, the same answer whoever the email is).
    pub fn attempt(&self, client: Option<IpAddr>, attempts: &[Attempt]) -> Result<(), ApiError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let config = &self.0.config;
        let window = config.attempts_window.as_secs_f64().max(0.001);
        // The address is charged every attempt, each email (or user) its own.
        #[expect(clippy::cast_precision_loss, reason = "a handful of attempts")]
        let mut wanted: Vec<(Key, u32, f64)> = vec![(
            Key::AttemptAddress(network(client)),
            config.attempts_per_address,
            attempts.len() as f64,
        )];
        for attempt in attempts {
            let key = match attempt {
                Attempt::Email(email) => Key::AttemptEmail(self.0.emails.hash_one(email)),
                Attempt::User(id) => Key::AttemptUser(*id),
            };
            match wanted.iter_mut().find(|(k, _, _)| *k == key) {
                Some((_, _, points)) => *points += 1.0,
                None => wanted.push((key, config.attempts_per_email, 1.0)),
            }
        }
        let now = config.clock.now();
        let mut buckets = self.lock();
        // All or none: first whether every bucket has room.
        let mut wait: f64 = 0.0;
        for (key, limit, points) in &wanted {
            let limit = f64::from(*limit);
            let bucket = buckets.get(key).map_or_else(
                || Bucket::full(limit, limit / window, now),
                |entry| entry.bucket,
            );
            let mut trial = bucket;
            match trial.take(*points, now) {
                Ok(()) => {}
                Err(Shortfall::Wait(seconds)) => wait = wait.max(seconds),
                Err(Shortfall::OverMaximum) => wait = wait.max(window),
            }
        }
        if wait > 0.0 {
            drop(buckets);
            crate::telemetry::metrics::throttled("attempts");
            return Err(ApiError::Exhausted {
                message: "Throttled: too many sign-in attempts; try again later".to_owned(),
                retry_after: wait.ceil(),
            });
        }
        for (key, limit, points) in wanted {
            let limit = f64::from(limit);
            let entry = buckets.entry(key).or_insert_with(|| Entry {
                bucket: Bucket::full(limit, limit / window, now),
                sized_at: now,
            });
            let _ = entry.bucket.take(points, now);
        }
        drop(buckets);
        self.after_charge(now);
        Ok(())
    }

    /// Now and then, and whenever over `max_buckets`, forgets the buckets that have
    /// refilled; if that is not enough, the fullest.
    fn after_charge(&self, now: Duration) {
        let charges = self.0.charges.fetch_add(1, Ordering::Relaxed) + 1;
        let max = self.0.config.max_buckets.max(1);
        let mut buckets = self.lock();
        if !charges.is_multiple_of(SWEEP_EVERY) && buckets.len() <= max {
            return;
        }
        buckets.retain(|_, entry| !entry.bucket.is_full(now));
        if buckets.len() > max {
            let keep = max * 3 / 4;
            let mut levels: Vec<(f64, Key)> = buckets
                .iter()
                .map(|(key, entry)| {
                    (
                        entry.bucket.available(now) / entry.bucket.maximum,
                        key.clone(),
                    )
                })
                .collect();
            let cut = levels.len() - keep;
            levels.select_nth_unstable_by(cut, |a, b| b.0.total_cmp(&a.0));
            for (_, key) in &levels[..cut] {
                buckets.remove(key);
            }
        }
    }
}

impl Charge {
    /// Refunds `requested - actual` points of one operation and reports its cost.
    pub fn settle(&self, requested: u64, actual: u64) -> CostReport {
        let actual = actual.min(requested);
        let status = self.metered.as_ref().map(|(throttle, key)| {
            let now = throttle.0.config.clock.now();
            let mut buckets = throttle.lock();
            match buckets.get_mut(key) {
                Some(entry) => {
                    #[expect(clippy::cast_precision_loss, reason = "costs far below 2^52")]
                    entry.bucket.refund((requested - actual) as f64, now);
                    status_of(&entry.bucket, now)
                }
                // Forgotten meanwhile (it had refilled): full again.
                None => {
                    let config = &throttle.0.config;
                    status_of(&Bucket::full(config.maximum, config.restore_rate, now), now)
                }
            }
        });
        CostReport {
            requested,
            actual: Some(actual),
            status,
        }
    }
}

fn status_of(bucket: &Bucket, now: Duration) -> ThrottleStatus {
    ThrottleStatus {
        maximum_available: bucket.maximum,
        currently_available: bucket.available(now),
        restore_rate: bucket.restore_rate,
    }
}

/// The address a bucket is kept for: IPv4 as is, IPv6 by its /64 (one subscriber's
/// network, which they may fill with addresses at will); unknown, one shared bucket.
fn network(client: Option<IpAddr>) -> IpAddr {
    match client {
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

/// Throttles a non-GraphQL endpoint (the webhooks, `/events`): one point per request from the
/// client's address, 429 with `Retry-After` when there is none.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0);
    let client = state.throttle.client_address(request.headers(), peer);
    match state.throttle.charge_address(client, 1) {
        Ok(_) => next.run(request).await,
        Err(refusal) => too_many(&refusal),
    }
}

/// 429 with `Retry-After` and the error as JSON.
pub fn too_many(refusal: &Refusal) -> Response {
    let body = json!({ "errors": [refusal.error.to_server_error()] });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
    if let Some(seconds) = refusal.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(clock: &Clock) -> Throttle {
        Throttle::new(ThrottleConfig {
            maximum: 100.0,
            restore_rate: 10.0,
            max_buckets: 4,
            clock: clock.clone(),
            ..ThrottleConfig::default()
        })
    }

    #[test]
    fn refunds_the_difference_and_refuses_when_spent() {
        let clock = Clock::manual();
        let throttle = throttle(&clock);
        let key = Key::User(Uuid::nil());
        let charge = throttle.take(key.clone(), &[80], None).unwrap();
        let report = charge.settle(80, 30);
        let status = report.status.unwrap();
        assert!((status.currently_available - 70.0).abs() < 1e-9);
        let refused = throttle.take(key.clone(), &[90], None).unwrap_err();
        match refused.error {
            ApiError::Exhausted { retry_after, .. } => assert!((retry_after - 2.0).abs() < 1e-9),
            other => panic!("{other:?}"),
        }
        assert_eq!(refused.retry_after(), Some(2));
        let over = throttle.take(key, &[101], None).unwrap_err();
        assert!(matches!(
            over.error,
            ApiError::MaxCost {
                cost: 101,
                maximum: 100
            }
        ));
    }

    #[test]
    fn memory_is_bounded() {
        let clock = Clock::manual();
        let throttle = throttle(&clock);
        for i in 0..50u128 {
            throttle
                .take(Key::User(Uuid::from_u128(i)), &[10], None)
                .unwrap();
        }
        assert!(throttle.buckets() <= 4, "{}", throttle.buckets());
        clock.advance(Duration::from_secs(10));
        throttle
            .take(Key::User(Uuid::from_u128(99)), &[10], None)
            .unwrap();
        for _ in 0..SWEEP_EVERY {
            throttle
                .take(Key::User(Uuid::from_u128(99)), &[0], None)
                .unwrap();
        }
        assert_eq!(throttle.buckets(), 1);
    }

    #[test]
    fn ipv6_clients_share_their_network() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(network(Some(a)), network(Some(b)));
        assert_ne!(
            network(Some(a)),
            network(Some("2001:db8:1:3::1".parse().unwrap()))
        );
    }

    #[test]
    fn plans_read_as_multipliers() {
        assert_eq!(
            parse_plans("advanced=2, plus=10").unwrap(),
            vec![("advanced".to_owned(), 2.0), ("plus".to_owned(), 10.0)]
        );
        assert!(parse_plans("plus").is_err());
        assert!(parse_plans("plus=-1").is_err());
    }
}
