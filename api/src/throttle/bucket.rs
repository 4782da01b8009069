//! The leaky bucket: points available, restored continuously up to a maximum, and the
//! clock it reads (the system's, or one a test moves by hand).

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Where time comes from.
#[derive(Clone, Debug, Default)]
pub enum Clock {
    /// The system's monotonic clock.
    #[default]
    System,
    /// Time that moves only when [`Clock::advance`] says so (for tests: no sleeping).
    Manual(Arc<Mutex<Duration>>),
}

impl Clock {
    /// A clock standing still until advanced.
    pub fn manual() -> Self {
        Self::Manual(Arc::default())
    }

    /// Moves a manual clock forward; the system clock moves by itself.
    pub fn advance(&self, by: Duration) {
        if let Self::Manual(now) = self {
            *now.lock().unwrap_or_else(PoisonError::into_inner) += by;
        }
    }

    /// The time since an origin fixed for the process (or the manual clock's zero).
    pub fn now(&self) -> Duration {
        match self {
            Self::System => {
                static ORIGIN: OnceLock<Instant> = OnceLock::new();
                ORIGIN.get_or_init(Instant::now).elapsed()
            }
            Self::Manual(now) => *now.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }
}

/// One principal's bucket.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    /// Points available at `at`.
    available: f64,
    at: Duration,
    /// The most points it holds.
    pub maximum: f64,
    /// Points restored per second.
    pub restore_rate: f64,
}

/// Why points were not taken.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Shortfall {
    /// More than the bucket ever holds.
    OverMaximum,
    /// Not now: there is room in this many seconds.
    Wait(f64),
}

impl Bucket {
    /// A full bucket.
    pub fn full(maximum: f64, restore_rate: f64, now: Duration) -> Self {
        Self {
            available: maximum,
            at: now,
            maximum,
            restore_rate,
        }
    }

    /// The points available at `now`.
    pub fn available(&self, now: Duration) -> f64 {
        let elapsed = now.saturating_sub(self.at).as_secs_f64();
        (self.available + elapsed * self.restore_rate).min(self.maximum)
    }

    /// Whether the bucket is full at `now` (then forgetting it loses nothing).
    pub fn is_full(&self, now: Duration) -> bool {
        self.available(now) >= self.maximum
    }

    /// Takes `points`, or says why not (taking nothing).
    pub fn take(&mut self, points: f64, now: Duration) -> Result<(), Shortfall> {
        if points > self.maximum {
            return Err(Shortfall::OverMaximum);
        }
        let available = self.available(now);
        if available < points {
            let wait = if self.restore_rate > 0.0 {
                (points - available) / self.restore_rate
            } else {
                f64::INFINITY
            };
            return Err(Shortfall::Wait(wait));
        }
        self.available = available - points;
        self.at = now;
        Ok(())
    }

    /// Gives `points` back (up to the maximum).
    pub fn refund(&mut self, points: f64, now: Duration) {
        self.available = (self.available(now) + points).min(self.maximum);
        self.at = now;
    }

    /// Changes the size (a shop's plan changed), keeping what was spent.
    pub fn resize(&mut self, maximum: f64, restore_rate: f64, now: Duration) {
        let spent = self.maximum - self.available(now);
        self.maximum = maximum;
        self.restore_rate = restore_rate;
        self.available = (maximum - spent).max(0.0);
        self.at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_and_refills_at_the_restore_rate() {
        let clock = Clock::manual();
        let mut bucket = Bucket::full(100.0, 10.0, clock.now());
        assert_eq!(bucket.take(60.0, clock.now()), Ok(()));
        assert_eq!(bucket.take(60.0, clock.now()), Err(Shortfall::Wait(2.0)));
        assert_eq!(bucket.take(101.0, clock.now()), Err(Shortfall::OverMaximum));
        clock.advance(Duration::from_secs(2));
        assert_eq!(bucket.take(60.0, clock.now()), Ok(()));
        assert!((bucket.available(clock.now()) - 0.0).abs() < 1e-9);
        bucket.refund(30.0, clock.now());
        assert!((bucket.available(clock.now()) - 30.0).abs() < 1e-9);
        clock.advance(Duration::from_secs(60));
        assert!(bucket.is_full(clock.now()));
        assert!((bucket.available(clock.now()) - 100.0).abs() < 1e-9);
    }
}
