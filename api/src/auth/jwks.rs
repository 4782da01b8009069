//! The JSON Web Key Set user tokens are checked against (`JWT_JWKS`). From a URL it stays
//! current: refetched every [`REFRESH_EVERY`], and at once when a token names a key it
//! does not hold (a key rotated in), at most once per [`UNKNOWN_KID_GAP`] so that tokens
//! with made-up `kid`s cannot make the service hammer the issuer. A failed fetch keeps the
//! keys it had.

use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};

/// How often a JWKS from a URL is fetched again.
pub const REFRESH_EVERY: Duration = Duration::from_secs(10 * 60);

/// The shortest time between two fetches made for unknown `kid`s.
pub const UNKNOWN_KID_GAP: Duration = Duration::from_secs(30);

/// A key set, shared by every clone.
#[derive(Clone, Debug)]
pub struct Jwks {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Where it is fetched from; `None` for a fixed set (a file, tests).
    url: Option<String>,
    set: RwLock<Arc<JwkSet>>,
    /// When it was last fetched (or tried); held while fetching, so one fetch runs at once.
    fetched: tokio::sync::Mutex<Instant>,
    unknown_kid_gap: Duration,
}

impl From<JwkSet> for Jwks {
    /// A fixed set, never refreshed.
    fn from(set: JwkSet) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: None,
                set: RwLock::new(Arc::new(set)),
                fetched: tokio::sync::Mutex::new(Instant::now()),
                unknown_kid_gap: UNKNOWN_KID_GAP,
            }),
        }
    }
}

impl Jwks {
    /// The set at `location`: an `http(s)://` URL (fetched now, then kept current) or a
    /// file (read once).
    pub async fn load(location: &str) -> anyhow::Result<Self> {
        if location.starts_with("http://") || location.starts_with("https://") {
            Self::remote(location, REFRESH_EVERY, UNKNOWN_KID_GAP).await
        } else {
            Ok(crate::config::load_jwks(location).await?.into())
        }
    }

    /// The set at `url`, fetched now, again every `refresh_every` (by a task that ends when
    /// the last clone is dropped) and for an unknown `kid` at most once per
    /// `unknown_kid_gap`.
    pub async fn remote(
        url: &str,
        refresh_every: Duration,
        unknown_kid_gap: Duration,
    ) -> anyhow::Result<Self> {
        let set = crate::config::load_jwks(url).await?;
        let jwks = Self {
            inner: Arc::new(Inner {
                url: Some(url.to_owned()),
                set: RwLock::new(Arc::new(set)),
                fetched: tokio::sync::Mutex::new(Instant::now()),
                unknown_kid_gap,
            }),
        };
        tokio::spawn(refresh_periodically(
            Arc::downgrade(&jwks.inner),
            refresh_every,
        ));
        Ok(jwks)
    }

    /// The key named `kid` in the set held now.
    pub fn find(&self, kid: &str) -> Option<Jwk> {
        self.set().find(kid).cloned()
    }

    fn set(&self) -> Arc<JwkSet> {
        self.inner
            .set
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the set again if it lacks `kid`, unless the last fetch was less than the
    /// gap for unknown kids ago.
    pub async fn refresh_for(&self, kid: &str) {
        if self.inner.url.is_none() || self.find(kid).is_some() {
            return;
        }
        let mut fetched = self.inner.fetched.lock().await;
        // Another request may have fetched it while this one waited.
        if self.find(kid).is_some() || fetched.elapsed() < self.inner.unknown_kid_gap {
            return;
        }
        self.inner.fetch().await;
        *fetched = Instant::now();
    }
}

impl Inner {
    async fn fetch(&self) {
        let Some(url) = &self.url else {
            return;
        };
        match crate::config::load_jwks(url).await {
            Ok(set) => {
                *self
                    .set
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(set);
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "JWT_JWKS: keeping the keys held"
                );
            }
        }
    }
}

async fn refresh_periodically(inner: Weak<Inner>, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        ticks.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut fetched = inner.fetched.lock().await;
        inner.fetch().await;
        *fetched = Instant::now();
    }
}
