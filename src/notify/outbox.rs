//! The outbox: deliveries are written to the store before they are sent (by the sweep
//! commit) and marked after, so a crash repeats at most the messages in flight. Each channel
//! works through its own queue, so a slow or failing channel never holds back another.
//!
//! Marks are written by group commit ([`Batch`]): the outcomes of a channel's sends gather
//! and are stored in one transaction with one flush once [`BATCH_MAX`] are waiting, or when
//! the next send would keep the oldest waiting for longer than [`BATCH_WINDOW`]. A message is
//! therefore in flight from its request until at most about `BATCH_WINDOW` after its answer,
//! and a crash repeats only those.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use super::{Channel, SendOutcome};
use crate::clock::SharedClock;
use crate::config::DeliveryConfig;
use crate::model::{Delivery, DeliveryStatus};
use crate::store::{Store, StoreError};

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeliveryReport {
    pub sent: usize,
    pub retrying: usize,
    pub dead: usize,
    /// The deliveries dead-lettered in this pass.
    pub dead_letters: Vec<Delivery>,
    /// The earliest retry this pass scheduled, so a daemon can wake for it.
    pub next_retry: Option<Timestamp>,
}

impl DeliveryReport {
    /// Adds another pass's counts; the earliest retry of both is kept.
    pub fn add(&mut self, other: DeliveryReport) {
        self.sent += other.sent;
        self.retrying += other.retrying;
        self.dead += other.dead;
        self.dead_letters.extend(other.dead_letters);
        self.next_retry = match (self.next_retry, other.next_retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What is sent in one go: one delivery, or the waiting members of a group.
type Unit = Vec<Delivery>;

/// The channels' delivery tasks. Each channel works through its queue on a task of its own;
/// a pass waits for them only as long as asked, so a channel that hangs (its far end never
/// answers, each send waiting out its timeout) delays only itself: its task goes on, and the
/// channel is left out of later passes until it is done.
#[derive(Debug, Default)]
pub struct Courier {
    running: tokio::sync::Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    tasks: tokio::task::JoinSet<(String, Result<DeliveryReport, StoreError>)>,
    busy: std::collections::HashSet<String>,
}

impl Courier {
    /// Starts a task for every channel with deliveries due (and no task still running), then
    /// waits for the tasks — all of them, or until `wait` has passed — and reports what the
    /// finished ones did, those of earlier passes included. A group goes out when its first
    /// member is due, with every member waiting by then.
    pub async fn pass(
        &self,
        store: &Store,
        channels: &Arc<BTreeMap<String, Channel>>,
        config: &DeliveryConfig,
        clock: &SharedClock,
        wait: Option<std::time::Duration>,
    ) -> Result<DeliveryReport, StoreError> {
        let mut running = self.running.lock().await;
        for (channel, queue) in due_queues(store, clock.now())? {
            if !running.busy.insert(channel.clone()) {
                continue;
            }
            let store = store.clone();
            let channels = Arc::clone(channels);
            let config = config.clone();
            let clock = Arc::clone(clock);
            running.tasks.spawn(async move {
                let report =
                    deliver_queue(&store, &channels, &channel, queue, &config, &clock).await;
                (channel, report)
            });
        }
        let deadline = wait.map(|w| tokio::time::Instant::now() + w);
        let mut report = DeliveryReport::default();
        loop {
            let next = match deadline {
                None => running.tasks.join_next().await,
                Some(at) => match tokio::time::timeout_at(at, running.tasks.join_next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            let Some(joined) = next else { break };
            let (channel, result) = joined.expect("delivery task panicked");
            running.busy.remove(&channel);
            report.add(result?);
        }
        if !running.busy.is_empty() {
            tracing::debug!(channels = ?running.busy, "still delivering");
        }
        Ok(report)
    }
}

/// Every channel's units that are due, in order.
fn due_queues(store: &Store, now: Timestamp) -> Result<BTreeMap<String, Vec<Unit>>, StoreError> {
    let pending = store.deliveries(Some(DeliveryStatus::Pending))?;
    let mut groups: BTreeMap<&str, Vec<&Delivery>> = BTreeMap::new();
    for d in &pending {
        if let Some(key) = &d.group {
            groups.entry(key.as_str()).or_default().push(d);
        }
    }
    let mut queues: BTreeMap<String, Vec<Unit>> = BTreeMap::new();
    for d in &pending {
        if d.next_attempt_at > now {
            continue;
        }
        let unit = match &d.group {
            None => vec![d.clone()],
            Some(key) => match groups.remove(key.as_str()) {
                Some(members) => members.into_iter().cloned().collect(),
                None => continue,
            },
        };
        queues.entry(d.channel.clone()).or_default().push(unit);
    }
    Ok(queues)
}

/// A batch's outcomes are stored once this many are waiting.
pub const BATCH_MAX: usize = 64;
/// A batch's outcomes are stored before the next send if it would keep the oldest waiting
/// longer than this.
pub const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(100);

/// The outcomes of sends not yet stored (group commit).
struct Batch<'a> {
    store: &'a Store,
    waiting: Vec<Delivery>,
    /// When the oldest waiting outcome came.
    oldest: Option<std::time::Instant>,
}

impl<'a> Batch<'a> {
    fn new(store: &'a Store) -> Self {
        Self {
            store,
            waiting: Vec::with_capacity(BATCH_MAX),
            oldest: None,
        }
    }

    /// Takes the outcome of one delivery of a send that took `took`; stores the batch if it
    /// is full, or if one more send as long would keep its oldest waiting past the window.
    fn push(&mut self, d: Delivery, took: std::time::Duration) -> Result<(), StoreError> {
        self.oldest.get_or_insert_with(std::time::Instant::now);
        self.waiting.push(d);
        let old = self
            .oldest
            .is_some_and(|at| at.elapsed() + took >= BATCH_WINDOW);
        if self.waiting.len() >= BATCH_MAX || old {
            self.finish()?;
        }
        Ok(())
    }

    /// Stores every waiting outcome: one transaction, one flush.
    fn finish(&mut self) -> Result<(), StoreError> {
        self.oldest = None;
        let waiting = std::mem::take(&mut self.waiting);
        self.store.update_deliveries(&waiting)
    }
}

/// Sends one channel's units in order; stops at the first that must wait for a retry, so the
/// channel's messages keep their order. What was sent is stored before this returns.
async fn deliver_queue(
    store: &Store,
    channels: &BTreeMap<String, Channel>,
    channel_name: &str,
    queue: Vec<Unit>,
    config: &DeliveryConfig,
    clock: &SharedClock,
) -> Result<DeliveryReport, StoreError> {
    let mut report = DeliveryReport::default();
    let Some(channel) = channels.get(channel_name) else {
        let mut gone = Vec::new();
        for members in queue {
            for mut d in members {
                d.status = DeliveryStatus::Dead;
                d.last_error = Some(format!("channel {channel_name:?} is no longer configured"));
                report.dead += 1;
                report.dead_letters.push(d.clone());
                gone.push(d);
            }
        }
        store.update_deliveries(&gone)?;
        return Ok(report);
    };
    let mut batch = Batch::new(store);
    let sent = send_queue(
        store,
        channel,
        channel_name,
        queue,
        config,
        clock,
        &mut batch,
    )
    .await;
    // Whatever happened, what went out is stored (a storage error here is reported after
    // the one that stopped the queue).
    let finished = batch.finish();
    let report = sent?;
    finished?;
    Ok(report)
}

async fn send_queue(
    store: &Store,
    channel: &Channel,
    channel_name: &str,
    queue: Vec<Unit>,
    config: &DeliveryConfig,
    clock: &SharedClock,
    batch: &mut Batch<'_>,
) -> Result<DeliveryReport, StoreError> {
    let mut report = DeliveryReport::default();
    for mut members in queue {
        while !members.is_empty() {
            let (message, n) = if members.len() == 1 {
                (members[0].message.clone(), 1)
            } else {
                super::group::combine(channel.format(), &members)
            };
            let mut sending = members[0].clone();
            sending.message = message;
            let event = store.event(&sending.event_id)?;
            let started = std::time::Instant::now();
            let outcome = channel.send(&sending, event.as_ref()).await;
            let took = started.elapsed();
            let now = clock.now();
            let attempts = members[..n].iter().map(|d| d.attempts).max().unwrap_or(0) + 1;
            let retry_at = match &outcome {
                SendOutcome::Retry { after, .. } if attempts < config.max_attempts => {
                    let wait = after.unwrap_or_else(|| {
                        crate::retry::backoff(config.backoff.as_duration(), attempts)
                    });
                    Some((
                        wait,
                        now.saturating_add(
                            SignedDuration::try_from(wait).unwrap_or(SignedDuration::MAX),
                        )
                        .unwrap_or(Timestamp::MAX),
                    ))
                }
                _ => None,
            };
            for mut d in members.drain(..n) {
                d.attempts += 1;
                match (&outcome, retry_at) {
                    (SendOutcome::Delivered(detail), _) => {
                        d.status = DeliveryStatus::Sent;
                        d.sent_at = Some(now);
                        d.last_error = None;
                        tracing::debug!(delivery = d.id, channel = channel_name, %detail, "delivered");
                        report.sent += 1;
                    }
                    (SendOutcome::Retry { error, .. }, Some((wait, at))) => {
                        d.next_attempt_at = at;
                        tracing::warn!(delivery = d.id, channel = channel_name, attempt = d.attempts, retry_in_s = wait.as_secs(), %error, "delivery failed; will retry");
                        d.last_error = Some(error.clone());
                        report.retrying += 1;
                    }
                    (SendOutcome::Retry { error, .. } | SendOutcome::Failed(error), _) => {
                        d.status = DeliveryStatus::Dead;
                        tracing::error!(delivery = d.id, channel = channel_name, attempts = d.attempts, %error, "delivery dead-lettered; `partnerwatch outbox --dead` lists it");
                        d.last_error = Some(error.clone());
                        report.dead += 1;
                        report.dead_letters.push(d.clone());
                    }
                }
                batch.push(d, took)?;
            }
            if let Some((_, at)) = retry_at {
                // Later messages of this channel wait too, so they keep their order.
                report.next_retry = Some(at);
                return Ok(report);
            }
        }
    }
    Ok(report)
}
