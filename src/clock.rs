//! Where "now" comes from. Nothing in partnerwatch reads the system time directly: the daemon
//! uses [`SystemClock`], the demo and the tests a [`ManualClock`] they move by hand, so that
//! a 14-day expiry or a weekly digest can be exercised in a second.

use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    pub fn set(&self, to: Timestamp) {
        *self.0.lock().expect("clock lock") = to;
    }

    pub fn advance(&self, by: SignedDuration) -> Timestamp {
        let mut now = self.0.lock().expect("clock lock");
        *now = now
            .saturating_add(by)
            .expect("duration fits in a timestamp");
        *now
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().expect("clock lock")
    }
}

/// A shared clock handle, as the pipeline holds it.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_clones_share_time() {
        let start: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        let other = clock.clone();
        clock.advance(SignedDuration::from_hours(36));
        assert_eq!(other.now(), "2026-11-24T20:00:00Z".parse().unwrap());
    }
}
