//! The scheduler box of DESIGN §1: when each source is swept (on its `every`), when digests
//! are queued (on their cron slots), and when the outbox is looked at again (a short tick, or
//! sooner when a channel's `Retry-After` ends). `run` drives it on the system clock and sleeps
//! until [`Tick::wake`]; `demo` drives it on a simulated clock that it moves itself.
//!
//! Time comes from the pipeline's clock only. Must never: let one failing sweep, digest or
//! delivery pass stop the others.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use crate::digest::{DigestError, Enqueued};
use crate::notify::outbox::DeliveryReport;
use crate::pipeline::{Pipeline, PollReport};
use crate::sources::SourceError;
use crate::store::StoreError;

/// How often the outbox is looked at for retries when nothing else is due.
pub const DELIVERY_TICK: Duration = Duration::from_secs(5);

/// How long the daemon's tick waits for its channels before it moves on.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(1);

/// What one sweep of the schedule did.
#[derive(Debug)]
pub struct Sweep {
    pub source: &'static str,
    pub result: Result<PollReport, SourceError>,
}

/// What one step of the schedule did, and when the next one is due.
#[derive(Debug)]
pub struct Tick {
    pub sweeps: Vec<Sweep>,
    pub digests: Result<Vec<Enqueued>, DigestError>,
    pub delivered: anyhow::Result<DeliveryReport>,
    /// The earliest of: the next source due, the earliest retry, the delivery tick.
    pub wake: Timestamp,
    /// Why the state database cannot be written, while it cannot (`None`: it works).
    pub storage: Option<String>,
}

/// The schedule of one pipeline.
#[derive(Debug)]
pub struct Scheduler<'p> {
    pipeline: &'p Pipeline,
    /// When each source (in the pipeline's order) is due next.
    next_due: Vec<Timestamp>,
    /// The last digest error logged, so a lasting one is logged once.
    digest_error: Option<String>,
    /// When the last delivery pass's earliest retry is due.
    next_retry: Option<Timestamp>,
    /// How long a tick waits for the channels (`None`: until they are done).
    delivery_wait: Option<Duration>,
    /// The storage failure the schedule is recovering from.
    storage: Option<String>,
}

impl<'p> Scheduler<'p> {
    /// A schedule on which every source is due at once.
    pub fn new(pipeline: &'p Pipeline) -> Scheduler<'p> {
        let now = pipeline.clock.now();
        Scheduler {
            pipeline,
            next_due: vec![now; pipeline.sources.len()],
            digest_error: None,
            next_retry: None,
            delivery_wait: None,
            storage: None,
        }
    }

    /// Waits for the channels at most `wait` a tick: a channel that hangs goes on delivering
    /// on its own task while the schedule moves on (the daemon).
    pub fn with_delivery_wait(mut self, wait: Duration) -> Scheduler<'p> {
        self.delivery_wait = Some(wait);
        self
    }

    /// When each configured digest is next due after now, for the start-up log.
    pub fn next_digests(&self) -> Vec<(&'p str, Timestamp)> {
        let now = self.pipeline.clock.now();
        self.pipeline
            .config
            .digests
            .iter()
            .filter_map(|d| d.slots.next(now).map(|n| (d.name.as_str(), n)))
            .collect()
    }

    /// Queues the digests that are due and delivers what waits, without sweeping: on start,
    /// deliveries left pending by an earlier run (a crash, a stop) go out first, with a digest
    /// whose slot passed while the service was down (less than a day ago).
    pub async fn resume(&mut self) -> Tick {
        let digests = self.queue_digests();
        let delivered = self.deliver().await;
        self.tick_of(Vec::new(), digests, delivered)
    }

    /// Sweeps every source that is due, queues due digests, then delivers. After a storage
    /// failure the database is reopened first, and the schedule says it works again only
    /// once a write goes through.
    pub async fn tick(&mut self) -> Tick {
        if self.storage.is_some() {
            self.recover();
        }
        let sweeps = self.sweep_due().await;
        let digests = self.queue_digests();
        let delivered = self.deliver().await;
        self.tick_of(sweeps, digests, delivered)
    }

    /// Reopens the database after a storage failure and checks that it can be written.
    fn recover(&mut self) {
        let store = &self.pipeline.store;
        let result = store
            .reopen()
            .and_then(|()| store.probe(self.pipeline.clock.now()));
        match result {
            Ok(()) => {
                tracing::info!(
                    "the state database can be written again; sweeps and deliveries go on"
                );
                self.storage = None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "the state database cannot be written yet");
                self.storage = Some(e.to_string());
            }
        }
    }

    /// Notes a storage failure among this tick's errors (logged once); the next tick reopens
    /// the database, so what was not written is dropped and it starts from what is on disk.
    fn note_storage(
        &mut self,
        sweeps: &[Sweep],
        digests: &Result<Vec<Enqueued>, DigestError>,
        delivered: &anyhow::Result<DeliveryReport>,
    ) {
        let failure = sweeps
            .iter()
            .filter_map(|s| match &s.result {
                Err(SourceError::Store(e)) => Some(e),
                _ => None,
            })
            .chain(match digests {
                Err(DigestError::Store(e)) => Some(e),
                _ => None,
            })
            .chain(
                delivered
                    .as_ref()
                    .err()
                    .and_then(|e| e.downcast_ref::<StoreError>()),
            )
            .find(|e| e.is_storage_failure());
        let Some(failure) = failure else { return };
        if self.storage.is_none() {
            tracing::error!(error = %failure, "cannot write the state database; nothing of this tick was kept, and the daemon retries every few seconds until it can write again (free space on the state_dir's disk)");
        }
        self.storage = Some(failure.to_string());
    }

    /// Sweeps every source that is due (a step of [`Scheduler::tick`]).
    pub async fn sweep_due(&mut self) -> Vec<Sweep> {
        let pipeline = self.pipeline;
        let mut sweeps = Vec::new();
        for (i, source) in pipeline.sources.iter().enumerate() {
            let now = pipeline.clock.now();
            if self.next_due[i] > now {
                continue;
            }
            self.next_due[i] = later(now, source.every());
            // A failed sweep changes nothing; `poll` logs it and counts it toward
            // `system.source_failing`. The next try comes on schedule.
            let result = pipeline.poll(source, false).await;
            // An API that asked to wait longer than a sweep does is not asked again before.
            if let Some(wait) = result.as_ref().err().and_then(SourceError::retry_after) {
                self.next_due[i] = self.next_due[i].max(later(pipeline.clock.now(), wait));
            }
            sweeps.push(Sweep {
                source: source.name(),
                result,
            });
        }
        sweeps
    }

    /// Queues every digest whose slot is due (a step of [`Scheduler::tick`]). A lasting error
    /// is logged once, not on every tick.
    pub fn queue_digests(&mut self) -> Result<Vec<Enqueued>, DigestError> {
        let pipeline = self.pipeline;
        let digests = crate::digest::enqueue_due(&pipeline.digest_inputs(), pipeline.clock.now());
        match &digests {
            Ok(_) => self.digest_error = None,
            Err(e) => {
                let e = e.to_string();
                if self.digest_error.as_deref() != Some(e.as_str()) {
                    tracing::error!(error = %e, "cannot prepare a digest; it is tried again every few seconds while its slot is due");
                }
                self.digest_error = Some(e);
            }
        }
        digests
    }

    /// Sends what is due in the outbox (a step of [`Scheduler::tick`]), and remembers when
    /// its earliest retry is due.
    pub async fn deliver(&mut self) -> anyhow::Result<DeliveryReport> {
        let delivered = self.pipeline.deliver_within(self.delivery_wait).await;
        self.next_retry = delivered.as_ref().ok().and_then(|r| r.next_retry);
        delivered
    }

    /// When the source `name` is swept next.
    pub fn next_sweep(&self, name: &str) -> Option<Timestamp> {
        let i = self
            .pipeline
            .sources
            .iter()
            .position(|s| s.name() == name)?;
        Some(self.next_due[i])
    }

    /// The earliest of: the next source due, the earliest retry, the delivery tick.
    pub fn wake(&self) -> Timestamp {
        let now = self.pipeline.clock.now();
        self.next_due
            .iter()
            .copied()
            .chain(self.next_retry)
            .fold(later(now, DELIVERY_TICK), Timestamp::min)
            .max(now)
    }

    fn tick_of(
        &mut self,
        sweeps: Vec<Sweep>,
        digests: Result<Vec<Enqueued>, DigestError>,
        delivered: anyhow::Result<DeliveryReport>,
    ) -> Tick {
        self.note_storage(&sweeps, &digests, &delivered);
        Tick {
            sweeps,
            digests,
            delivered,
            wake: self.wake(),
            storage: self.storage.clone(),
        }
    }
}

/// `now + d`, or the end of time for a duration too long to add.
fn later(now: Timestamp, d: Duration) -> Timestamp {
    SignedDuration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}
