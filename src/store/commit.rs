//! Commits: one complete sweep (records, index, history, events, deliveries, metadata and
//! the expiry clock) or one digest slot (its marker and deliveries), each in a single sled
//! transaction followed by one flush, so a crash leaves all of it or none.
//!
//! Must never: write anything for a sweep that did not complete.

use jiff::Timestamp;
use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::meta::{MetaKey, MetaValue, MetaWrite};
use super::outbox::insert_delivery;
use super::records::{history_prefix, StoredRecord};
use super::{transaction_error, Store, StoreError};
use crate::model::{Delivery, Event};

/// Writes to the expiry clock's entries: (referral id, new state as JSON, or removal).
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
    /// After a complete sweep that saw the ids in another order than the kept one, that order
    /// ([`super::Index::changed_order`]).
    pub order: Option<Vec<u8>>,
    /// Versions replaced or removed by this sweep: (id, JSON as it is or as
    /// [`pack`](super::records::pack) made it), kept as history.
    pub history: Vec<(String, Vec<u8>)>,
    /// The change counts of the records that changed: (id, changes so far, this one included).
    pub versions: Vec<(String, u64)>,
    /// Small metadata written with the sweep: (key, value, or removal).
    pub meta: Vec<MetaWrite>,
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

impl Store {
    /// Applies one complete sweep — records, events, deliveries, sweep markers — in a single
    /// transaction, then flushes. Events whose id is already in the log are skipped, and so
    /// are their deliveries.
    pub fn commit_sweep(
        &self,
        commit: &SweepCommit,
        events: &[Event],
        deliveries: &[Delivery],
    ) -> Result<CommitReport, StoreError> {
        let t = self.t()?;
        let records = self.records_tree(&commit.dataset)?;
        let hashes = self.index_tree(&commit.dataset)?;
        let mut record_batch = sled::Batch::default();
        for (id, hash, raw) in &commit.upserts {
            record_batch.insert(id.as_bytes(), StoredRecord::encode(*hash, raw));
        }
        for id in &commit.removals {
            record_batch.remove(id.as_bytes());
        }
        let hash_batch = super::index::bucket_batch(&commit.index);
        let encoded_events: Vec<(String, Vec<u8>)> = events
            .iter()
            .map(|e| (e.id.clone(), super::events::encode_event(e)))
            .collect();

        let mut expiry_batch = sled::Batch::default();
        for (id, state) in &commit.expiry {
            match state {
                Some(bytes) => expiry_batch.insert(id.as_bytes(), bytes.as_slice()),
                None => expiry_batch.remove(id.as_bytes()),
            }
        }

        let meta_writes: Vec<(Vec<u8>, Option<Vec<u8>>)> = commit
            .meta
            .iter()
            .map(|(k, v)| (k.encode(), v.as_ref().map(MetaValue::encode)))
            .chain(commit.throttle.iter().map(|(key, at)| {
                (
                    MetaKey::Throttle(key.clone()).encode(),
                    Some(MetaValue::Time(*at).encode()),
                )
            }))
            .collect();
        let history = self.history_tree(&commit.dataset)?;
        let versions = self.versions_tree(&commit.dataset)?;
        let mut version_batch = sled::Batch::default();
        for (id, n) in &commit.versions {
            version_batch.insert(id.as_bytes(), &n.to_be_bytes());
        }
        let superseded_at = commit
            .completed_at
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .as_millisecond();
        let trees = (
            &hashes,
            &history,
            &records,
            &t.events,
            &t.event_ids,
            &t.outbox,
            &t.pending,
            &t.meta,
            &t.expiry,
            &versions,
        );
        let result = trees.transaction(
            |(
                hashes,
                history,
                records,
                events,
                event_ids,
                outbox,
                pending,
                meta,
                expiry,
                versions,
            )| {
                hashes.apply_batch(&hash_batch)?;
                versions.apply_batch(&version_batch)?;
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
                    insert_delivery(outbox, pending, delivery)?;
                    report.deliveries_written += 1;
                }
                for (key, value) in &meta_writes {
                    match value {
                        Some(v) => meta.insert(key.as_slice(), v.as_slice())?,
                        None => meta.remove(key.as_slice())?,
                    };
                }
                if let Some(at) = commit.completed_at {
                    let key = MetaKey::Baseline(commit.dataset.clone()).encode();
                    if meta.get(&key)?.is_none() {
                        meta.insert(key, MetaValue::Time(at).encode())?;
                        let counted = MetaKey::ChangesCounted(commit.dataset.clone()).encode();
                        meta.insert(counted, MetaValue::Time(at).encode())?;
                    }
                    let key = MetaKey::LastSweep(commit.dataset.clone()).encode();
                    meta.insert(key, MetaValue::Time(at).encode())?;
                }
                Ok::<_, ConflictableTransactionError<StoreError>>(report)
            },
        );
        let report = result.map_err(transaction_error)?;
        if let Some(order) = &commit.order {
            self.write_order(&commit.dataset, order)?;
        }
        // A record whose changes are all counted holds at most that many earlier versions.
        let counted = MetaKey::ChangesCounted(commit.dataset.clone()).encode();
        let counts: std::collections::HashMap<&str, u64> = match t.meta.contains_key(counted)? {
            true => commit
                .versions
                .iter()
                .map(|(id, n)| (id.as_str(), *n))
                .collect(),
            false => Default::default(),
        };
        let keep = self.history_versions;
        let ids: Vec<&str> = commit
            .history
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| counts.get(id).is_none_or(|&n| n > keep as u64))
            .collect();
        self.trim_history(&history, &ids, keep)?;
        t.db.flush()?;
        Ok(report)
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
        let t = self.t()?;
        let marker = slot.map(|s| MetaKey::DigestSlot(s.to_string()).encode());
        let result = (&t.outbox, &t.pending, &t.meta).transaction(|(outbox, pending, meta)| {
            if let Some(m) = &marker {
                if meta.get(m)?.is_some() {
                    return Ok(false);
                }
                meta.insert(m.as_slice(), MetaValue::Time(at).encode())?;
            }
            for delivery in deliveries {
                insert_delivery(outbox, pending, delivery)?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(true)
        });
        let written = result.map_err(transaction_error)?;
        t.db.flush()?;
        Ok(written)
    }
}
