//! [`SweepDiff`]: the comparison of one sweep against the store, fed page by page.

use std::collections::HashSet;

use serde_json::Value;

use crate::model::Change;
use crate::store::{Records, StoreError, SweepCommit};

/// One record that is new, changed or gone.
#[derive(Debug, Clone)]
pub struct RecordChange {
    pub entity_id: String,
    /// The stored version, with its hash (`None` for a new record).
    pub old: Option<(u128, Value)>,
    /// The swept version, with its hash (`None` for a removed record).
    pub new: Option<(u128, Value)>,
    pub changes: Vec<Change>,
}

/// The result of a complete sweep: what to write and what changed.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub commit: SweepCommit,
    pub changes: Vec<RecordChange>,
    pub seen: usize,
    pub unchanged: usize,
}

/// Compares records as they arrive with the stored ones.
#[derive(Debug)]
pub struct SweepDiff {
    dataset: String,
    stored: Records,
    seen: HashSet<String>,
    upserts: Vec<(String, u128, Vec<u8>)>,
    history: Vec<(String, Vec<u8>)>,
    changes: Vec<RecordChange>,
    unchanged: usize,
}

/// The content hash that decides whether a record changed.
pub fn content_hash(raw: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(raw)
}

impl SweepDiff {
    pub fn new(dataset: &str, stored: Records) -> Self {
        Self {
            dataset: dataset.to_string(),
            stored,
            seen: HashSet::new(),
            upserts: Vec::new(),
            history: Vec::new(),
            changes: Vec::new(),
            unchanged: 0,
        }
    }

    /// Takes one record of the sweep. A record seen twice in one sweep (a page boundary moved
    /// under the pager) counts once.
    pub fn ingest(&mut self, id: &str, raw: &[u8]) -> Result<(), StoreError> {
        if !self.seen.insert(id.to_string()) {
            return Ok(());
        }
        let hash = content_hash(raw);
        let stored = self.stored.get(id)?;
        if let Some(stored) = &stored {
            if stored.hash == hash {
                self.unchanged += 1;
                return Ok(());
            }
        }
        let new: Value = serde_json::from_slice(raw).map_err(|e| StoreError::Corrupt {
            what: "swept record",
            detail: e.to_string(),
        })?;
        let old = stored
            .as_ref()
            .map(|s| s.json().map(|v| (s.hash, v)))
            .transpose()?;
        let changes = match &old {
            Some((_, old)) => super::diff::changes(old, &new),
            None => Vec::new(),
        };
        self.upserts.push((id.to_string(), hash, raw.to_vec()));
        // Same content in another spelling (key order, white space): store, announce nothing.
        if let (Some(s), false) = (&stored, changes.is_empty()) {
            self.history.push((id.to_string(), s.raw.to_vec()));
        }
        if old.is_none() || !changes.is_empty() {
            self.changes.push(RecordChange {
                entity_id: id.to_string(),
                old,
                new: Some((hash, new)),
                changes,
            });
        }
        Ok(())
    }

    /// Ends a *complete* sweep: every stored record not seen is a removal.
    pub fn finish(mut self) -> Result<SweepOutcome, StoreError> {
        let mut removals = Vec::new();
        for item in self.stored.iter() {
            let (id, stored) = item?;
            if !self.seen.contains(&id) {
                let old = stored.json()?;
                self.history.push((id.clone(), stored.raw.to_vec()));
                self.changes.push(RecordChange {
                    entity_id: id.clone(),
                    old: Some((stored.hash, old)),
                    new: None,
                    changes: Vec::new(),
                });
                removals.push(id);
            }
        }
        Ok(SweepOutcome {
            commit: SweepCommit {
                dataset: self.dataset,
                upserts: self.upserts,
                history: self.history,
                removals,
                ..Default::default()
            },
            changes: self.changes,
            seen: self.seen.len(),
            unchanged: self.unchanged,
        })
    }
}
