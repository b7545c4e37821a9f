//! [`SweepDiff`]: the comparison of one sweep against the store, fed record by record while
//! pages stream in.
//!
//! The store keeps a content-hash index per dataset ([`Index`]); the sweep loads it and marks
//! each id seen as its record arrives. An unchanged record therefore costs one hash of its
//! bytes and one map lookup — it is never parsed and never written. What is unseen at the end
//! of a *complete* sweep was removed. Only new and changed records are parsed and kept.
//!
//! A baseline sweep announces nothing, so its records are written to the store in batches as
//! they arrive instead of being held until the end; of its records only those a time-based
//! detector needs (`keep`) are kept as changes.

use serde_json::Value;

use crate::model::Change;
use crate::sources::{RecordSink, Taken};
use crate::store::{Index, Records, Seen, Store, StoreError, SweepCommit, Versions};

/// A baseline writes its records to the store whenever this many bytes are waiting.
pub const BASELINE_BATCH_BYTES: usize = 8 << 20;

/// One record that is new, changed or gone.
#[derive(Debug, Clone)]
pub struct RecordChange {
    pub entity_id: String,
    /// The stored version, with its hash (`None` for a new record).
    pub old: Option<(u128, Value)>,
    /// The swept version, with its hash (`None` for a removed record).
    pub new: Option<(u128, Value)>,
    pub changes: Vec<Change>,
    /// Which change of this record this is (0 for its first since the baseline): part of its
    /// events' ids, so a value that goes back and forth is announced each time, and a change
    /// seen again after a crash keeps its id.
    pub version: u64,
}

impl RecordChange {
    /// The change of `entity_id` from `old` to `new` (either may be absent), with its
    /// field-level changes worked out.
    pub fn between(
        entity_id: impl Into<String>,
        old: Option<(u128, Value)>,
        new: Option<(u128, Value)>,
    ) -> Self {
        let changes = match (&old, &new) {
            (Some((_, o)), Some((_, n))) => super::diff::changes(o, n),
            _ => Vec::new(),
        };
        Self {
            entity_id: entity_id.into(),
            old,
            new,
            changes,
            version: 0,
        }
    }
}

/// The result of a complete sweep: what to write and what changed.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub commit: SweepCommit,
    pub changes: Vec<RecordChange>,
    pub seen: usize,
    pub unchanged: usize,
    /// How many records the store held for the dataset before the sweep.
    pub stored_before: usize,
}

pub use crate::sources::IngestError;

impl RecordSink for SweepDiff {
    fn record(&mut self, id: &str, raw: &[u8]) -> Result<Taken, IngestError> {
        self.ingest(id, raw)
    }

    fn holds(&self, id: &str) -> bool {
        self.index.holds(id)
    }

    fn keep(&mut self, id: &str) -> Taken {
        // Seen: not removed. Known: counted as unchanged. New: not taken until it can be read.
        match self.index.see(id) {
            Seen::Known(_) => {
                self.seen += 1;
                self.unchanged += 1;
                Taken::First
            }
            Seen::New => Taken::First,
            Seen::Again => Taken::Again,
        }
    }
}

/// Compares records as they arrive with the stored ones.
pub struct SweepDiff {
    store: Store,
    dataset: String,
    stored: Records,
    versions: Versions,
    /// (id, its change count with this sweep's change) for every announced change.
    counted: Vec<(String, u64)>,
    index: Index,
    seen: usize,
    /// (id, hash) of every new or changed record, for the index.
    indexed: Vec<(String, u128)>,
    baseline: bool,
    keep: fn(&Value) -> bool,
    upserts: Vec<(String, u128, Vec<u8>)>,
    upsert_bytes: usize,
    batch_bytes: usize,
    history: Vec<(String, Vec<u8>)>,
    changes: Vec<RecordChange>,
    unchanged: usize,
}

impl std::fmt::Debug for SweepDiff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SweepDiff")
            .field("dataset", &self.dataset)
            .field("baseline", &self.baseline)
            .field("seen", &self.seen)
            .finish()
    }
}

/// The content hash that decides whether a record changed.
pub fn content_hash(raw: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(raw)
}

impl SweepDiff {
    /// A sweep of `dataset`. On a `baseline` sweep, new records for which `keep` is false are
    /// stored without being kept as changes.
    pub fn new(
        store: &Store,
        dataset: &str,
        baseline: bool,
        keep: fn(&Value) -> bool,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            store: store.clone(),
            dataset: dataset.to_string(),
            stored: store.records(dataset)?,
            versions: store.versions(dataset)?,
            counted: Vec::new(),
            index: store.index(dataset)?,
            seen: 0,
            indexed: Vec::new(),
            baseline,
            keep,
            upserts: Vec::new(),
            upsert_bytes: 0,
            batch_bytes: BASELINE_BATCH_BYTES,
            history: Vec::new(),
            changes: Vec::new(),
            unchanged: 0,
        })
    }

    /// A baseline writes its records whenever `bytes` are waiting (default
    /// [`BASELINE_BATCH_BYTES`]).
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// Takes one record of the sweep.
    pub fn ingest(&mut self, id: &str, raw: &[u8]) -> Result<Taken, IngestError> {
        let known = match self.index.see(id) {
            Seen::Again => return Ok(Taken::Again),
            Seen::New => None,
            Seen::Known(h) => Some(h),
        };
        self.seen += 1;
        let hash = content_hash(raw);
        if known == Some(hash) {
            self.unchanged += 1;
            return Ok(Taken::First);
        }
        let malformed = |e: serde_json::Error| IngestError::Malformed {
            id: id.to_string(),
            error: e.to_string(),
        };
        let new: Value = serde_json::from_slice(raw).map_err(malformed)?;
        let old = match known {
            None => None,
            Some(_) => self.stored.get(id)?,
        };
        let old_value = old
            .as_ref()
            .map(|s| s.json().map(|v| (s.hash, v)))
            .transpose()?;
        let changes = match &old_value {
            Some((_, old)) => super::diff::changes(old, &new),
            None => Vec::new(),
        };
        self.upsert_bytes += raw.len();
        self.upserts.push((id.to_string(), hash, raw.to_vec()));
        self.indexed.push((id.to_string(), hash));
        // Same content in another spelling (key order, white space): store, announce nothing.
        if let (Some(s), false) = (&old, changes.is_empty()) {
            self.history.push((id.to_string(), s.raw.to_vec()));
        }
        let wanted = !self.baseline || (self.keep)(&new);
        if wanted && (old_value.is_none() || !changes.is_empty()) {
            let version = self.count(id)?;
            self.changes.push(RecordChange {
                entity_id: id.to_string(),
                old: old_value,
                new: Some((hash, new)),
                changes,
                version,
            });
        }
        if self.baseline && self.upsert_bytes >= self.batch_bytes {
            self.store
                .write_records(&self.dataset, &std::mem::take(&mut self.upserts))?;
            self.upsert_bytes = 0;
        }
        Ok(Taken::First)
    }

    /// The number of this change of `id`, counted for the commit. A baseline counts nothing:
    /// its records are where every count starts.
    fn count(&mut self, id: &str) -> Result<u64, StoreError> {
        let version = self.versions.get(id)?;
        if !self.baseline {
            self.counted.push((id.to_string(), version + 1));
        }
        Ok(version)
    }

    /// Ends a *complete* sweep: every stored record not seen is a removal.
    pub fn finish(mut self) -> Result<SweepOutcome, StoreError> {
        let stored_before = self.index.len();
        let removals = self.index.unseen();
        for id in &removals {
            if let Some(stored) = self.stored.get(id)? {
                let old = stored.json()?;
                self.history.push((id.clone(), stored.raw.to_vec()));
                if !self.baseline || (self.keep)(&old) {
                    let version = self.count(id)?;
                    self.changes.push(RecordChange {
                        entity_id: id.clone(),
                        old: Some((stored.hash, old)),
                        new: None,
                        changes: Vec::new(),
                        version,
                    });
                }
            }
        }
        Ok(SweepOutcome {
            commit: SweepCommit {
                dataset: self.dataset,
                index: self.index.rewrite(&self.indexed, &removals),
                upserts: self.upserts,
                history: self.history,
                versions: self.counted,
                removals,
                ..Default::default()
            },
            changes: self.changes,
            seen: self.seen,
            unchanged: self.unchanged,
            stored_before,
        })
    }
}
