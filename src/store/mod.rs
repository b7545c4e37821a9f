//! The sled database in the state folder: per dataset the latest version of each record
//! (with a content hash, so an unchanged record costs a compare and no write), the event log,
//! the outbox and small metadata. A sweep is committed in one transaction — records, events
//! and deliveries together — and flushed once, so a crash leaves either all of it or none.
//!
//! Must never: write anything for a sweep that did not complete.

use std::path::Path;

use jiff::Timestamp;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;

use crate::model::{Delivery, DeliveryStatus, Event};

pub mod index;

pub use index::{Index, Seen};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database in {path}: {source} (is another partnerwatch running on the same state_dir?)")]
    Open { path: String, source: sled::Error },
    #[error("state database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("corrupt entry in the state database ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// sled's page cache: enough for the hot indexes, small enough for an idle daemon.
const CACHE_BYTES: u64 = 32 << 20;

/// Creates the state folder if needed; it holds tokens, so only its owner may enter it.
pub fn prepare_state_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
        path: dir.display().to_string(),
        source: sled::Error::Io(e),
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot restrict the state folder to its owner");
        }
    }
    Ok(())
}

fn history_prefix(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 9);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key
}

/// The version of a record the store holds: its content hash and the JSON as returned.
#[derive(Debug, Clone)]
pub struct StoredRecord {
    pub hash: u128,
    pub raw: sled::IVec,
}

impl StoredRecord {
    fn encode(hash: u128, raw: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(16 + raw.len());
        v.extend_from_slice(&hash.to_le_bytes());
        v.extend_from_slice(raw);
        v
    }

    fn decode(bytes: sled::IVec) -> Result<Self, StoreError> {
        if bytes.len() < 16 {
            return Err(StoreError::Corrupt {
                what: "record",
                detail: format!("{} bytes", bytes.len()),
            });
        }
        let hash = u128::from_le_bytes(bytes[..16].try_into().expect("16 bytes"));
        Ok(StoredRecord {
            hash,
            raw: bytes.subslice(16, bytes.len() - 16),
        })
    }

    pub fn json(&self) -> Result<serde_json::Value, StoreError> {
        serde_json::from_slice(&self.raw).map_err(|e| StoreError::Corrupt {
            what: "record",
            detail: e.to_string(),
        })
    }
}

/// Writes to small keyed values: (key, new value, or removal).
pub type KeyWrites = Vec<(String, Option<Vec<u8>>)>;

/// Everything one complete sweep changes besides its events and deliveries (which
/// [`Store::commit_sweep`] takes alongside), applied atomically.
#[derive(Debug, Default)]
pub struct SweepCommit {
    pub dataset: String,
    /// Records that are new or whose content changed: (id, hash, raw JSON).
    pub upserts: Vec<(String, u128, Vec<u8>)>,
    pub removals: Vec<String>,
    /// Rewritten buckets of the content-hash index (empty: the bucket is gone).
    pub index: Vec<(u16, Vec<u8>)>,
    /// Versions replaced or removed by this sweep: (id, raw JSON), kept as history.
    pub history: Vec<(String, Vec<u8>)>,
    /// Small metadata written with the sweep: (key, value, or removal).
    pub meta: KeyWrites,
    /// Throttle marks set by this sweep's deliveries: (rule NUL entity, when).
    pub throttle: Vec<(String, Timestamp)>,
    /// Entries of the expiry clock: (referral id, new state as JSON, or removal).
    pub expiry: KeyWrites,
    pub completed_at: Option<Timestamp>,
}

/// What a commit actually wrote: events already in the log (same id) are skipped along with
/// their deliveries.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CommitReport {
    pub events_written: usize,
    pub events_already_known: usize,
    pub deliveries_written: usize,
}

/// The state database.
#[derive(Debug, Clone)]
pub struct Store {
    db: sled::Db,
    events: sled::Tree,
    event_ids: sled::Tree,
    outbox: sled::Tree,
    /// The ids of the pending deliveries: the outbox keeps every delivery ever sent (for
    /// `partnerwatch outbox`), and a delivery pass reads only what is waiting.
    pending: sled::Tree,
    /// The ids of the dead-lettered deliveries (for `/healthz` and `outbox --dead`).
    dead: sled::Tree,
    meta: sled::Tree,
    expiry: sled::Tree,
    history_versions: usize,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let config = sled::Config::new()
            .path(dir.join("db"))
            .cache_capacity(CACHE_BYTES)
            // Every commit flushes explicitly; no background flusher keeps the lock alive.
            .flush_every_ms(None);
        // A process that is just stopping may still hold the lock for a moment.
        let mut tries = 0;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                // sled reports a held lock as the I/O error "could not acquire lock on …".
                Err(sled::Error::Io(e))
                    if e.to_string().contains("could not acquire lock") && tries < 60 =>
                {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: dir.display().to_string(),
                        source,
                    })
                }
            }
        };
        let store = Store {
            events: db.open_tree("events")?,
            event_ids: db.open_tree("event_ids")?,
            outbox: db.open_tree("outbox")?,
            pending: db.open_tree("outbox_pending")?,
            dead: db.open_tree("outbox_dead")?,
            meta: db.open_tree("meta")?,
            expiry: db.open_tree("expiry")?,
            history_versions: crate::config::DEFAULT_HISTORY_VERSIONS,
            db,
        };
        store.index_statuses()?;
        Ok(store)
    }

    fn records_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("records/{dataset}"))?)
    }

    fn index_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("index/{dataset}"))?)
    }

    /// The content-hash index of `dataset`: every stored id with its latest hash.
    pub fn index(&self, dataset: &str) -> Result<Index, StoreError> {
        Index::load(&self.index_tree(dataset)?)
    }

    /// Writes records outside a sweep's transaction: the baseline streams its records this
    /// way, since it announces nothing and an interrupted baseline is simply taken again. The
    /// index that makes them count as known is written with the sweep's commit.
    pub fn write_records(
        &self,
        dataset: &str,
        upserts: &[(String, u128, Vec<u8>)],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (id, hash, raw) in upserts {
            batch.insert(id.as_bytes(), StoredRecord::encode(*hash, raw));
        }
        self.records_tree(dataset)?.apply_batch(batch)?;
        Ok(())
    }

    fn history_tree(&self, dataset: &str) -> Result<sled::Tree, StoreError> {
        Ok(self.db.open_tree(format!("history/{dataset}"))?)
    }

    /// The datasets that have records.
    pub fn datasets(&self) -> Vec<String> {
        self.db
            .tree_names()
            .iter()
            .filter_map(|n| {
                std::str::from_utf8(n)
                    .ok()?
                    .strip_prefix("records/")
                    .map(str::to_string)
            })
            .collect()
    }

    /// Every earlier version of one record, oldest first, with the time it was replaced.
    pub fn history(
        &self,
        dataset: &str,
        id: &str,
    ) -> Result<Vec<(Timestamp, serde_json::Value)>, StoreError> {
        let tree = self.history_tree(dataset)?;
        let mut out = Vec::new();
        for item in tree.scan_prefix(history_prefix(id)) {
            let (_, v) = item?;
            let corrupt = |detail: String| StoreError::Corrupt {
                what: "history",
                detail,
            };
            if v.len() < 8 {
                return Err(corrupt(format!("{} bytes", v.len())));
            }
            let millis = i64::from_be_bytes(v[..8].try_into().expect("8 bytes"));
            let at = Timestamp::from_millisecond(millis).map_err(|e| corrupt(e.to_string()))?;
            let value = serde_json::from_slice(&v[8..]).map_err(|e| corrupt(e.to_string()))?;
            out.push((at, value));
        }
        Ok(out)
    }

    /// Keeps at most `keep` earlier versions of each of `ids`.
    fn trim_history(&self, tree: &sled::Tree, ids: &[&str], keep: usize) -> Result<(), StoreError> {
        for id in ids {
            let keys: Vec<sled::IVec> = tree
                .scan_prefix(history_prefix(id))
                .keys()
                .collect::<Result<_, _>>()?;
            for key in keys.iter().take(keys.len().saturating_sub(keep)) {
                tree.remove(key)?;
            }
        }
        Ok(())
    }

    /// Sets how many earlier versions of each record are kept.
    pub fn with_history_versions(mut self, versions: usize) -> Self {
        self.history_versions = versions;
        self
    }

    /// A read view of one dataset's latest records.
    pub fn records(&self, dataset: &str) -> Result<Records, StoreError> {
        Ok(Records(self.records_tree(dataset)?))
    }

    /// When the dataset's first complete sweep (its baseline) was committed, if it was.
    pub fn baseline_at(&self, dataset: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&format!("baseline/{dataset}"))
    }

    /// When the dataset's last complete sweep was committed.
    pub fn last_sweep_at(&self, dataset: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&format!("last_sweep/{dataset}"))
    }

    fn meta_time(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        match self.meta.get(key)? {
            None => Ok(None),
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or(StoreError::Corrupt {
                    what: "meta",
                    detail: key.to_string(),
                }),
        }
    }

    /// Applies one complete sweep — records, events, deliveries, sweep markers — in a single
    /// transaction, then flushes. Events whose id is already in the log are skipped, and so
    /// are their deliveries.
    pub fn commit_sweep(
        &self,
        commit: &SweepCommit,
        events: &[Event],
        deliveries: &[Delivery],
    ) -> Result<CommitReport, StoreError> {
        let records = self.records_tree(&commit.dataset)?;
        let hashes = self.index_tree(&commit.dataset)?;
        let mut record_batch = sled::Batch::default();
        let mut hash_batch = sled::Batch::default();
        for (id, hash, raw) in &commit.upserts {
            record_batch.insert(id.as_bytes(), StoredRecord::encode(*hash, raw));
        }
        for id in &commit.removals {
            record_batch.remove(id.as_bytes());
        }
        for (bucket, blob) in &commit.index {
            if blob.is_empty() {
                hash_batch.remove(&bucket.to_be_bytes());
            } else {
                hash_batch.insert(&bucket.to_be_bytes(), blob.as_slice());
            }
        }
        let encoded_events: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| {
                (
                    e.id.clone(),
                    serde_json::to_vec(e).expect("events serialize"),
                )
            })
            .collect();

        let mut expiry_batch = sled::Batch::default();
        for (id, state) in &commit.expiry {
            match state {
                Some(bytes) => expiry_batch.insert(id.as_bytes(), bytes.as_slice()),
                None => expiry_batch.remove(id.as_bytes()),
            }
        }

        let history = self.history_tree(&commit.dataset)?;
        let superseded_at = commit
            .completed_at
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .as_millisecond();
        let trees = (
            &hashes,
            &history,
            &records,
            &self.events,
            &self.event_ids,
            &self.outbox,
            &self.pending,
            &self.meta,
            &self.expiry,
        );
        let result = trees.transaction(
            |(hashes, history, records, events, event_ids, outbox, pending, meta, expiry)| {
                hashes.apply_batch(&hash_batch)?;
                for (id, raw) in &commit.history {
                    let mut key = history_prefix(id);
                    key.extend_from_slice(&history.generate_id()?.to_be_bytes());
                    let mut value = Vec::with_capacity(8 + raw.len());
                    value.extend_from_slice(&superseded_at.to_be_bytes());
                    value.extend_from_slice(raw);
                    history.insert(key, value)?;
                }
                records.apply_batch(&record_batch)?;
                expiry.apply_batch(&expiry_batch)?;
                let mut report = CommitReport::default();
                let mut known = std::collections::HashSet::new();
                for (id, bytes) in &encoded_events {
                    if event_ids.get(id.as_bytes())?.is_some() {
                        report.events_already_known += 1;
                        known.insert(id.as_str());
                        continue;
                    }
                    let seq = events.generate_id()?.to_be_bytes();
                    events.insert(&seq, bytes.as_slice())?;
                    event_ids.insert(id.as_bytes(), &seq)?;
                    report.events_written += 1;
                }
                for delivery in deliveries {
                    if known.contains(delivery.event_id.as_str()) {
                        continue;
                    }
                    let mut delivery = delivery.clone();
                    delivery.id = outbox.generate_id()? + 1;
                    let bytes = serde_json::to_vec(&delivery).expect("deliveries serialize");
                    outbox.insert(&delivery.id.to_be_bytes(), bytes)?;
                    pending.insert(&delivery.id.to_be_bytes(), &[])?;
                    report.deliveries_written += 1;
                }
                for (key, value) in &commit.meta {
                    match value {
                        Some(v) => meta.insert(key.as_bytes(), v.as_slice())?,
                        None => meta.remove(key.as_bytes())?,
                    };
                }
                for (key, at) in &commit.throttle {
                    meta.insert(
                        format!("throttle/{key}").as_bytes(),
                        at.to_string().as_bytes(),
                    )?;
                }
                if let Some(at) = commit.completed_at {
                    let key = format!("baseline/{}", commit.dataset);
                    if meta.get(key.as_bytes())?.is_none() {
                        meta.insert(key.as_bytes(), at.to_string().as_bytes())?;
                    }
                    let key = format!("last_sweep/{}", commit.dataset);
                    meta.insert(key.as_bytes(), at.to_string().as_bytes())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(report)
            },
        );
        let report = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        })?;
        let ids: Vec<&str> = commit.history.iter().map(|(id, _)| id.as_str()).collect();
        self.trim_history(&history, &ids, self.history_versions)?;
        self.db.flush()?;
        Ok(report)
    }

    /// Failed sweeps in `[start, end)`: (when, source), from the keys [`sweep_failure_key`] wrote.
    pub fn sweep_failures(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<(Timestamp, String)>, StoreError> {
        Ok(self
            .sweep_failure_keys(start, end)?
            .into_iter()
            .map(|(_, at, source)| (at, source))
            .collect())
    }

    /// The keys of failed sweeps in `[start, end)`, with their time and source.
    pub fn sweep_failure_keys(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<(String, Timestamp, String)>, StoreError> {
        let from = sweep_failure_key(start, "");
        let to = sweep_failure_key(end, "");
        let mut out = Vec::new();
        for item in self.meta.range(from.as_bytes()..to.as_bytes()) {
            let (k, _) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let mut parts = key.splitn(3, '/').skip(1);
            let (Some(ms), Some(source)) = (parts.next(), parts.next()) else {
                continue;
            };
            if let Ok(Ok(at)) = ms.parse::<i64>().map(Timestamp::from_millisecond) {
                let source = source.to_string();
                out.push((key, at, source));
            }
        }
        Ok(out)
    }

    /// Whether the digest slot `key` was already taken (its deliveries are in the outbox).
    pub fn digest_sent(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.meta.contains_key(format!("digest/{key}").as_bytes())?)
    }

    /// Writes a digest's deliveries, and with `slot` the marker that this slot is done, in
    /// one transaction: either both are stored or neither. Returns false (writing nothing) if
    /// the slot's marker was already there.
    pub fn commit_digest(
        &self,
        slot: Option<&str>,
        at: Timestamp,
        deliveries: &[Delivery],
    ) -> Result<bool, StoreError> {
        let marker = slot.map(|s| format!("digest/{s}"));
        let result =
            (&self.outbox, &self.pending, &self.meta).transaction(|(outbox, pending, meta)| {
                if let Some(m) = &marker {
                    if meta.get(m.as_bytes())?.is_some() {
                        return Ok(false);
                    }
                    meta.insert(m.as_bytes(), at.to_string().as_bytes())?;
                }
                for delivery in deliveries {
                    let mut delivery = delivery.clone();
                    delivery.id = outbox.generate_id()? + 1;
                    let bytes = serde_json::to_vec(&delivery).expect("deliveries serialize");
                    outbox.insert(&delivery.id.to_be_bytes(), bytes)?;
                    pending.insert(&delivery.id.to_be_bytes(), &[])?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(true)
            });
        let written = result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        })?;
        self.db.flush()?;
        Ok(written)
    }

    /// A metadata value written by a commit's `meta`.
    pub fn meta(&self, key: &str) -> Result<Option<sled::IVec>, StoreError> {
        Ok(self.meta.get(key.as_bytes())?)
    }

    /// When a rule last sent about a record (see [`crate::rules::PlanContext`]).
    pub fn throttle_mark(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&format!("throttle/{key}"))
    }

    /// Every entry of the expiry clock: (referral id, state as JSON).
    pub fn expiry_entries(&self) -> Result<Vec<(String, sled::IVec)>, StoreError> {
        self.expiry
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v))
            })
            .collect()
    }

    /// The deliveries with the given status, oldest first. Pending ones come from the pending
    /// index, without reading the deliveries already sent.
    pub fn deliveries(&self, status: Option<DeliveryStatus>) -> Result<Vec<Delivery>, StoreError> {
        let mut out = Vec::new();
        let index = match status {
            Some(DeliveryStatus::Pending) => Some(&self.pending),
            Some(DeliveryStatus::Dead) => Some(&self.dead),
            _ => None,
        };
        if let Some(index) = index {
            for item in index.iter() {
                let (id, _) = item?;
                if let Some(bytes) = self.outbox.get(&id)? {
                    let d = decode_delivery(&bytes)?;
                    if Some(d.status) == status {
                        out.push(d);
                    }
                }
            }
            return Ok(out);
        }
        for item in self.outbox.iter() {
            let (_, bytes) = item?;
            let d = decode_delivery(&bytes)?;
            if status.is_none_or(|s| s == d.status) {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Writes a delivery's new state (and its place in the pending index) and flushes, so that
    /// "sent" survives a crash.
    pub fn update_delivery(&self, delivery: &Delivery) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(delivery).expect("deliveries serialize");
        let key = delivery.id.to_be_bytes();
        let status = delivery.status;
        (&self.outbox, &self.pending, &self.dead)
            .transaction(|(outbox, pending, dead)| {
                outbox.insert(&key, bytes.as_slice())?;
                for (index, this) in [
                    (pending, DeliveryStatus::Pending),
                    (dead, DeliveryStatus::Dead),
                ] {
                    if status == this {
                        index.insert(&key, &[])?;
                    } else {
                        index.remove(&key)?;
                    }
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => StoreError::Sled(e),
            })?;
        self.db.flush()?;
        Ok(())
    }

    /// How many deliveries are waiting and how many are dead-lettered.
    pub fn outbox_counts(&self) -> (usize, usize) {
        (self.pending.len(), self.dead.len())
    }

    /// Builds the status indexes once for a state folder written before they existed.
    fn index_statuses(&self) -> Result<(), StoreError> {
        const DONE: &[u8] = b"outbox_status_index";
        if self.meta.contains_key(DONE)? {
            return Ok(());
        }
        for item in self.outbox.iter() {
            let (id, bytes) = item?;
            match decode_delivery(&bytes)?.status {
                DeliveryStatus::Pending => self.pending.insert(id, &[])?,
                DeliveryStatus::Dead => self.dead.insert(id, &[])?,
                DeliveryStatus::Sent => None,
            };
        }
        self.meta.insert(DONE, &[])?;
        self.db.flush()?;
        Ok(())
    }

    /// Whether an event with this id is in the log.
    pub fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.event_ids.contains_key(id.as_bytes())?)
    }

    /// One event by id.
    pub fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let Some(seq) = self.event_ids.get(id.as_bytes())? else {
            return Ok(None);
        };
        match self.events.get(seq)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode_event(&bytes)?)),
        }
    }

    /// Every event in the log, in the order they were stored.
    pub fn events(&self) -> Result<Vec<Event>, StoreError> {
        self.events
            .iter()
            .map(|item| decode_event(&item?.1))
            .collect()
    }

    /// The events detected at or after `since`, in the order they were stored. The log is
    /// read from its end and stops at the first event more than [`EVENT_ORDER_SLACK`] older
    /// than `since`: events are stored in the order they are detected, so a week's digest
    /// does not read a year of history.
    pub fn events_since(&self, since: Timestamp) -> Result<Vec<Event>, StoreError> {
        let stop = since - EVENT_ORDER_SLACK;
        let mut out = Vec::new();
        for item in self.events.iter().rev() {
            let event = decode_event(&item?.1)?;
            if event.detected_at < stop {
                break;
            }
            if event.detected_at >= since {
                out.push(event);
            }
        }
        out.reverse();
        Ok(out)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        Ok(())
    }
}

/// How far out of detection order the log may be (events of one commit share a time; a
/// clock step backwards is tolerated this far) when it is read from the end.
pub const EVENT_ORDER_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// Failed sweeps are remembered this long (for the digest's health section).
pub const SWEEP_FAILURES_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(60 * 24);

/// The metadata key that records one failed sweep of `source` at `at` (sortable by time).
pub fn sweep_failure_key(at: Timestamp, source: &str) -> String {
    format!("sweep_failed/{:015}/{source}", at.as_millisecond().max(0))
}

fn decode_delivery(bytes: &[u8]) -> Result<Delivery, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: "delivery",
        detail: e.to_string(),
    })
}

fn decode_event(bytes: &[u8]) -> Result<Event, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        what: "event",
        detail: e.to_string(),
    })
}

/// A read view of one dataset's latest records.
#[derive(Debug, Clone)]
pub struct Records(sled::Tree);

impl Records {
    pub fn get(&self, id: &str) -> Result<Option<StoredRecord>, StoreError> {
        self.0
            .get(id.as_bytes())?
            .map(StoredRecord::decode)
            .transpose()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every (id, record), in id order.
    pub fn iter(&self) -> impl Iterator<Item = Result<(String, StoredRecord), StoreError>> + '_ {
        self.0.iter().map(|item| {
            let (k, v) = item?;
            let id = String::from_utf8(k.to_vec()).map_err(|e| StoreError::Corrupt {
                what: "record id",
                detail: e.to_string(),
            })?;
            Ok((id, StoredRecord::decode(v)?))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;

    fn event(n: i64, at: Timestamp) -> Event {
        Event {
            id: format!("e{n}"),
            kind: EventKind::ReferralNew,
            source: "referrals".into(),
            entity_id: format!("r{n}"),
            detected_at: at,
            record: serde_json::json!({}),
            previous: None,
            changes: Vec::new(),
            data: serde_json::Value::Null,
        }
    }

    #[test]
    fn events_since_reads_the_recent_end_of_the_log_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let day = jiff::SignedDuration::from_hours(24);
        for n in 0..10 {
            let commit = SweepCommit {
                dataset: "referrals".into(),
                ..Default::default()
            };
            store
                .commit_sweep(&commit, &[event(n, t0 + day * n as i32)], &[])
                .unwrap();
        }
        let ids: Vec<String> = store
            .events_since(t0 + day * 7)
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, vec!["e7", "e8", "e9"]);
        assert_eq!(store.events_since(t0).unwrap().len(), 10);
    }

    #[test]
    fn failed_sweeps_are_found_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let t0: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let hour = jiff::SignedDuration::from_hours(1);
        let commit = SweepCommit {
            dataset: "referrals".into(),
            meta: (0..5)
                .map(|h| {
                    (
                        sweep_failure_key(t0 + hour * h, "referrals"),
                        Some(Vec::new()),
                    )
                })
                .collect(),
            ..Default::default()
        };
        store.commit_sweep(&commit, &[], &[]).unwrap();
        let found = store.sweep_failures(t0 + hour, t0 + hour * 3).unwrap();
        assert_eq!(
            found,
            vec![
                (t0 + hour, "referrals".to_string()),
                (t0 + hour * 2, "referrals".to_string())
            ]
        );
    }

    #[test]
    fn pending_and_dead_deliveries_come_from_indexes_which_older_folders_get_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let now: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
        let message = crate::model::Message {
            title: "t".into(),
            body: "b".into(),
            text: None,
        };
        {
            let store = Store::open(dir.path()).unwrap();
            let deliveries: Vec<Delivery> = (0..3)
                .map(|i| Delivery::pending(&format!("e{i}"), None, "r", "c", message.clone(), now))
                .collect();
            store.commit_digest(None, now, &deliveries).unwrap();
            let mut first = store.deliveries(Some(DeliveryStatus::Pending)).unwrap()[0].clone();
            first.status = DeliveryStatus::Sent;
            store.update_delivery(&first).unwrap();
            let pending = store.deliveries(Some(DeliveryStatus::Pending)).unwrap();
            assert_eq!(pending.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 3]);
            assert_eq!(store.pending.len(), 2, "the sent one left the index");
            let mut second = pending[0].clone();
            second.status = DeliveryStatus::Dead;
            store.update_delivery(&second).unwrap();
            assert_eq!(store.outbox_counts(), (1, 1));
            second.status = DeliveryStatus::Pending; // `outbox --retry`
            store.update_delivery(&second).unwrap();
            assert_eq!(store.outbox_counts(), (2, 0));
            // A state folder from before the index: no index, no marker.
            store.pending.clear().unwrap();
            store.meta.remove(b"outbox_status_index").unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let pending = store.deliveries(Some(DeliveryStatus::Pending)).unwrap();
        assert_eq!(pending.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(store.deliveries(None).unwrap().len(), 3);
        assert_eq!(store.outbox_counts(), (2, 0));
    }
}
