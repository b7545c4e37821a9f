//! [`SweepDiff`]: the comparison of one sweep against the store, fed record by record while
//! pages stream in.
//!
//! The store keeps a content-hash index per dataset ([`Index`]); the sweep loads it and marks
//! each id seen as its record arrives. An unchanged record therefore costs one hash of its
//! bytes and one map lookup — it is never parsed and never written. What is unseen at the end
//! of a *complete* sweep was removed. Only new and changed records are kept, and they are
//! kept as text: a change is found by comparing the two versions' texts member by member
//! ([`super::diff::changes_in_text`]), and a version is parsed only when something reads
//! more of it than the few fields a detector asks for ([`Doc`]).
//!
//! A baseline sweep announces nothing, so its records are not held until the end: each is
//! appended to a spool file as it arrives (one unnamed file in the state folder, gone with
//! the process), and at the end they are written to the store in id order, in batches. In
//! order, because sled then fills its tree from one end: written in the order they arrive
//! (random ids), every batch touches pages all over the tree, which sled reads back and
//! holds. Of a baseline's records only those a time-based detector needs (`keep`) are read
//! in full and kept as changes.

use std::io::Write;

use serde_json::Value;

use crate::model::{Change, Doc};
use crate::sources::{RecordSink, Taken};
use crate::store::{Index, RecordBatch, Records, Seen, Store, StoreError, SweepCommit, Versions};

/// Of a record of a baseline (raw JSON): whether a time-based detector needs it as a change.
/// An error only if the record is not JSON.
pub type Keep = fn(&[u8]) -> Result<bool, serde_json::Error>;

/// A [`Keep`] for datasets none of whose baseline records are needed: each is only checked
/// to be JSON.
pub fn keep_none(raw: &[u8]) -> Result<bool, serde_json::Error> {
    serde_json::from_slice::<serde::de::IgnoredAny>(raw).map(|_| false)
}

/// A baseline writes its spooled records to the store in batches of this many bytes, each
/// flushed (sled then holds one batch of unwritten pages at a time).
pub const BASELINE_BATCH_BYTES: usize = 2 << 20;

/// One record that is new, changed or gone.
#[derive(Debug, Clone)]
pub struct RecordChange {
    pub entity_id: String,
    /// The stored version, with its hash (`None` for a new record): its text, parsed only
    /// if something reads it.
    pub old: Option<(u128, Doc)>,
    /// The swept version, with its hash (`None` for a removed record): its text, parsed
    /// only if something reads it.
    pub new: Option<(u128, Doc)>,
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
            old: old.map(|(h, v)| (h, Doc::from(v))),
            new: new.map(|(h, v)| (h, Doc::from(v))),
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

    fn unchanged(&mut self, id: &str, from: &[u8]) -> Option<usize> {
        let len = self.index.see_unchanged(id, from)?;
        self.seen += 1;
        self.unchanged += 1;
        Some(len)
    }

    fn keep(&mut self, id: &str) -> Taken {
        // Seen: not removed. Known: counted as unchanged. New: not taken until it can be read.
        match self.index.see(id) {
            Seen::Known(..) => {
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
    /// (id, hash, length) of every new or changed record, for the index; and of unchanged
    /// ones whose length the index does not hold yet.
    indexed: Vec<(String, u128, usize)>,
    baseline: bool,
    keep: Keep,
    upserts: Vec<(String, u128, Vec<u8>)>,
    /// A baseline's records, appended as they arrive ([`Spool`]).
    spool: Option<Spool>,
    batch_bytes: usize,
    history: Vec<(String, Vec<u8>)>,
    /// Of a sweep that is not a baseline, the new and changed records to compare when the
    /// pages are done ([`SweepDiff::compare`]): (their place in `upserts`, whether the store
    /// holds a version of them).
    pending: Vec<(usize, bool)>,
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

/// A baseline's records as they arrived: appended to an unnamed file, with where each one is.
struct Spool {
    file: std::io::BufWriter<std::fs::File>,
    /// (its place in `indexed`, offset, length) of every record.
    entries: Vec<(usize, u64, u32)>,
    end: u64,
}

impl Spool {
    fn new(file: std::fs::File) -> Self {
        Self {
            file: std::io::BufWriter::with_capacity(1 << 20, file),
            entries: Vec::new(),
            end: 0,
        }
    }

    fn append(&mut self, n: usize, raw: &[u8]) -> std::io::Result<()> {
        self.file.write_all(raw)?;
        self.entries.push((n, self.end, raw.len() as u32));
        self.end += raw.len() as u64;
        Ok(())
    }
}

pub use crate::store::content_hash;

impl SweepDiff {
    /// A sweep of `dataset`. On a `baseline` sweep, new records for which `keep` is false are
    /// stored without being kept as changes.
    pub fn new(
        store: &Store,
        dataset: &str,
        baseline: bool,
        keep: Keep,
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
            spool: None,
            batch_bytes: BASELINE_BATCH_BYTES,
            history: Vec::new(),
            pending: Vec::new(),
            changes: Vec::new(),
            unchanged: 0,
        })
    }

    /// A baseline writes its records in batches of `bytes` (default
    /// [`BASELINE_BATCH_BYTES`]).
    pub fn with_batch_bytes(mut self, bytes: usize) -> Self {
        self.batch_bytes = bytes;
        self
    }

    /// Takes one record of the sweep.
    pub fn ingest(&mut self, id: &str, raw: &[u8]) -> Result<Taken, IngestError> {
        let (known, known_len) = match self.index.see(id) {
            Seen::Again => return Ok(Taken::Again),
            Seen::New => (None, 0),
            Seen::Known(h, len) => (Some(h), len),
        };
        self.seen += 1;
        let hash = content_hash(raw);
        if known == Some(hash) {
            if known_len != raw.len() {
                // Indexed before lengths were kept: the index learns it.
                self.indexed.push((id.to_string(), hash, raw.len()));
            }
            self.unchanged += 1;
            return Ok(Taken::First);
        }
        let malformed = |e: serde_json::Error| IngestError::Malformed {
            id: id.to_string(),
            error: e.to_string(),
        };
        // A new record of a baseline is announced by nothing: it is read in full only if a
        // time-based detector wants it.
        if self.baseline && known.is_none() && !(self.keep)(raw).map_err(malformed)? {
            self.upsert(id, hash, raw)?;
            return Ok(Taken::First);
        }
        if !self.baseline {
            // Read in full when the pages are done ([`SweepDiff::compare`]); checked to be
            // JSON now, so that a bad record is named with its page.
            serde_json::from_slice::<serde::de::IgnoredAny>(raw).map_err(malformed)?;
            self.upsert(id, hash, raw)?;
            self.pending.push((self.upserts.len() - 1, known.is_some()));
            return Ok(Taken::First);
        }
        let new = Doc::from(serde_json::from_slice::<Value>(raw).map_err(malformed)?);
        let old = match known {
            None => None,
            Some(_) => self.stored.get(id)?,
        };
        self.upsert(id, hash, raw)?;
        let wanted = known.is_none() || (self.keep)(raw).unwrap_or(false);
        self.compare_one(id, hash, (raw, new), old, wanted)?;
        Ok(Taken::First)
    }

    /// Takes one new or changed record (`raw`, held as `new`) against its stored version
    /// (`old`); `wanted`: a change of it is announced. The two are compared as text
    /// ([`super::diff::changes_in_text`]), and the stored one is kept as text in the change.
    fn compare_one(
        &mut self,
        id: &str,
        hash: u128,
        (raw, new): (&[u8], Doc),
        old: Option<crate::store::StoredRecord>,
        wanted: bool,
    ) -> Result<(), StoreError> {
        let changes = match &old {
            Some(s) => {
                super::diff::changes_in_text(&s.raw, raw).map_err(|detail| StoreError::Corrupt {
                    what: "record",
                    detail,
                })?
            }
            None => Vec::new(),
        };
        // Same content in another spelling (key order, white space): store, announce nothing.
        if let (Some(s), false) = (&old, changes.is_empty()) {
            self.history.push((id.to_string(), s.packed.to_vec()));
        }
        if wanted && (old.is_none() || !changes.is_empty()) {
            let version = self.count(id)?;
            self.changes.push(RecordChange {
                entity_id: id.to_string(),
                old: old.map(|s| (s.hash, Doc::from_text(&s.raw[..]))),
                new: Some((hash, new)),
                changes,
                version,
            });
        }
        Ok(())
    }

    /// Compares the new and changed records of a sweep that is not a baseline with their
    /// stored versions, once its pages are done: a stored version read while pages stream
    /// in lands in memory the pages passed through, and is held to the end of the sweep.
    /// (When the versions were held as JSON trees, some 20 KB a change where its bytes are
    /// 1.5, a steady sweep of 100,000 referrals with 1 % changed grew by 50 MB as it read
    /// its pages.) The changes keep the order in which the records came.
    fn compare(&mut self) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut self.pending);
        for (at, known) in pending {
            // Taken out of `upserts` while it is compared, and put back.
            let (id, hash, raw) = {
                let (id, hash, raw) = &mut self.upserts[at];
                (id.clone(), *hash, std::mem::take(raw))
            };
            let old = match known {
                true => self.stored.get(&id)?,
                false => None,
            };
            // Checked to be JSON as it arrived ([`SweepDiff::ingest`]); read if something
            // needs more of it than a detector's few fields.
            let new = Doc::from_text(&raw[..]);
            self.compare_one(&id, hash, (&raw, new), old, true)?;
            self.upserts[at].2 = raw;
        }
        Ok(())
    }

    /// Takes a new or changed record for the store and the index; a baseline's goes to the
    /// spool.
    fn upsert(&mut self, id: &str, hash: u128, raw: &[u8]) -> Result<(), StoreError> {
        self.indexed.push((id.to_string(), hash, raw.len()));
        if !self.baseline {
            self.upserts.push((id.to_string(), hash, raw.to_vec()));
            return Ok(());
        }
        let spool = match &mut self.spool {
            Some(spool) => spool,
            None => self.spool.insert(Spool::new(self.store.spool_file()?)),
        };
        Ok(spool.append(self.indexed.len() - 1, raw)?)
    }

    /// Writes a baseline's spooled records to the store, in id order, in batches.
    fn write_spool(&mut self) -> Result<(), StoreError> {
        let Some(mut spool) = self.spool.take() else {
            return Ok(());
        };
        spool.file.flush()?;
        let file = spool.file.get_ref();
        let indexed = &self.indexed;
        spool
            .entries
            .sort_unstable_by(|a, b| indexed[a.0].0.cmp(&indexed[b.0].0));
        let (mut batch, mut raw) = (RecordBatch::default(), Vec::new());
        for &(n, offset, len) in &spool.entries {
            raw.resize(len as usize, 0);
            std::os::unix::fs::FileExt::read_exact_at(file, &mut raw, offset)?;
            let (id, hash, _) = &indexed[n];
            batch.add(id, *hash, &raw);
            if batch.bytes() >= self.batch_bytes {
                self.store
                    .write_records(&self.dataset, std::mem::take(&mut batch))?;
            }
        }
        self.store.write_records(&self.dataset, batch)
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

    /// Ends a sweep. After a `complete` one every stored record not seen is a removal; after
    /// a partial one (an incremental sweep) nothing is.
    pub fn finish(mut self, complete: bool) -> Result<SweepOutcome, StoreError> {
        self.write_spool()?;
        self.compare()?;
        let stored_before = self.index.len();
        let removals = if complete {
            self.index.unseen()
        } else {
            Vec::new()
        };
        for id in &removals {
            if let Some(stored) = self.stored.get(id)? {
                let old = stored.json()?;
                self.history.push((id.clone(), stored.packed.to_vec()));
                if !self.baseline || (self.keep)(&stored.raw).unwrap_or(false) {
                    let version = self.count(id)?;
                    self.changes.push(RecordChange {
                        entity_id: id.clone(),
                        old: Some((stored.hash, Doc::from(old))),
                        new: None,
                        changes: Vec::new(),
                        version,
                    });
                }
            }
        }
        let mut index = self.index.rewrite(&self.indexed, &removals);
        if self.baseline {
            // Like its records, a baseline's index is written before its commit, in parts: in
            // the commit's one transaction, sled would hold every leaf of the new index tree
            // that each bucket's write replaces until the end. Without the commit a crash
            // leaves no baseline, and the next one drops all of it.
            self.store.write_index(&self.dataset, &index)?;
            index.clear();
        }
        Ok(SweepOutcome {
            commit: SweepCommit {
                dataset: self.dataset,
                index,
                order: complete.then(|| self.index.changed_order()).flatten(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sweep(store: &Store, baseline: bool, records: &[(&str, &str)]) -> SweepOutcome {
        let mut diff = SweepDiff::new(store, "referrals", baseline, keep_none).unwrap();
        for (id, raw) in records {
            diff.ingest(id, raw.as_bytes()).unwrap();
        }
        let mut outcome = diff.finish(true).unwrap();
        outcome.commit.completed_at = Some(jiff::Timestamp::UNIX_EPOCH);
        store.commit_sweep(&outcome.commit, &[], &[]).unwrap();
        outcome
    }

    #[test]
    fn changes_compared_after_the_pages_keep_the_order_the_records_came_in() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ids = ["m", "z", "a", "q", "b"];
        let first: Vec<(&str, String)> = ids
            .iter()
            .map(|id| (*id, format!(r#"{{"id":"{id}","v":1}}"#)))
            .collect();
        let first: Vec<(&str, &str)> = first.iter().map(|(id, raw)| (*id, raw.as_str())).collect();
        assert!(sweep(&store, true, &first).changes.is_empty());
        // z and a changed, n is new, b is listed in another spelling: neither id order nor
        // the order of the store.
        let second = [
            ("m", r#"{"id":"m","v":1}"#),
            ("z", r#"{"id":"z","v":2}"#),
            ("n", r#"{"id":"n","v":1}"#),
            ("a", r#"{"id":"a","v":2}"#),
            ("q", r#"{"id":"q","v":1}"#),
            ("b", r#"{"v":1,"id":"b"}"#),
        ];
        let outcome = sweep(&store, false, &second);
        let order: Vec<&str> = outcome
            .changes
            .iter()
            .map(|c| c.entity_id.as_str())
            .collect();
        assert_eq!(order, ["z", "n", "a"]);
        let z = &outcome.changes[0];
        assert_eq!(
            z.old.as_ref().unwrap().1["v"],
            1,
            "compared with the stored version"
        );
        assert_eq!(z.new.as_ref().unwrap().1["v"], 2);
        assert!(outcome.changes[1].old.is_none(), "n is new");
        let kept: Vec<&str> = outcome
            .commit
            .history
            .iter()
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(
            kept,
            ["z", "a"],
            "b's other spelling is stored, not kept as history"
        );
        assert_eq!(outcome.unchanged, 2);
    }

    #[test]
    fn a_record_that_is_not_json_is_refused_as_it_arrives_not_when_the_pages_are_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        sweep(&store, true, &[("a", r#"{"id":"a","v":1}"#)]);
        let mut diff = SweepDiff::new(&store, "referrals", false, keep_none).unwrap();
        let refused = diff.ingest("a", br#"{"id":"a","v":"#);
        assert!(
            matches!(refused, Err(IngestError::Malformed { ref id, .. }) if id == "a"),
            "{refused:?}"
        );
    }
}
