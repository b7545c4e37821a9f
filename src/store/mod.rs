//! The sled database in the state folder, split by what it stores:
//! - [`records`]: per dataset the latest version of each record with a content hash (an
//!   unchanged record costs a compare and no write), its [`index`] and history;
//! - [`events`]: the event log;
//! - [`outbox`]: the deliveries and their status indexes;
//! - [`meta`]: small typed values (baselines, throttle marks, digest slots, source health);
//! - [`commit`]: a sweep or a digest slot in one transaction, flushed once, so a crash leaves
//!   either all of it or none.
//!
//! Here: opening the database and the state folder. Must never: write anything for a sweep
//! that did not complete.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use sled::transaction::TransactionError;

pub mod actions;
pub mod commit;
pub mod events;
pub mod index;
pub mod meta;
pub mod outbox;
pub mod records;

pub use commit::{CommitReport, KeyWrites, SweepCommit};
pub use events::EVENT_ORDER_SLACK;
pub use index::{Index, Seen};
pub use meta::{
    MetaKey, MetaValue, MetaWrite, Side, SourceHealth, ThresholdKey, SWEEP_FAILURES_KEPT,
};
pub use records::{content_hash, RecordBatch, Records, StoredRecord, Versions};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the state database in {path}: {source}")]
    Open { path: String, source: sled::Error },
    #[error("the state database in {path} is in use by another partnerwatch process (`partnerwatch run` on the same state_dir?)")]
    Locked { path: String },
    #[error("state database error: {0}")]
    Sled(#[from] sled::Error),
    #[error("the state database in {path} is damaged ({source}). partnerwatch does not start over on its own: restore the folder from a backup, or move it aside (e.g. `mv {path} {path}.damaged`) and run again — the next sweep is a new baseline (no alerts), and the event log and outbox in the damaged copy are not carried over")]
    Damaged { path: String, source: sled::Error },
    #[error(
        "the state database is closed after a storage error: {0} (it is reopened on the next tick)"
    )]
    Closed(String),
    #[error("the state database is still in use by a sweep or a delivery; it is reopened on a later tick")]
    Busy,
    #[error("corrupt entry in the state database ({what}): {detail}")]
    Corrupt { what: &'static str, detail: String },
}

/// An I/O error of the state folder outside sled (a baseline's spool file) is a storage
/// failure like sled's own.
impl From<std::io::Error> for StoreError {
    fn from(e: std::io::Error) -> Self {
        StoreError::Sled(sled::Error::Io(e))
    }
}

impl StoreError {
    /// Whether this is the storage failing (a full disk, an I/O error, a closed database)
    /// rather than one bad entry: after it sled refuses every write until reopened.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            StoreError::Sled(e) | StoreError::Open { source: e, .. } => matches!(
                e,
                sled::Error::Io(_) | sled::Error::Corruption { .. } | sled::Error::ReportableBug(_)
            ),
            StoreError::Closed(_) => true,
            StoreError::Damaged { .. }
            | StoreError::Locked { .. }
            | StoreError::Busy
            | StoreError::Corrupt { .. } => false,
        }
    }
}

/// sled's page cache: enough for the hot indexes, small enough for an idle daemon.
pub const CACHE_BYTES: u64 = 32 << 20;

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

/// Opens the sled database in `dir/db` with the fixed trees. A snapshot that sled left
/// half-written (`snap.*.generating`, after a crash or a full disk) is removed first: sled
/// writes a snapshot under that name and renames it when complete, so such a file is never
/// the only copy of anything, yet sled would read it as the newest snapshot and refuse to
/// open ("Read corrupted data").
fn open_trees(dir: &Path) -> Result<Trees, StoreError> {
    let path = dir.join("db");
    remove_half_written_snapshots(&path);
    let config = sled::Config::new()
        .path(&path)
        .cache_capacity(CACHE_BYTES)
        // Every commit flushes explicitly; no background flusher keeps the lock alive.
        .flush_every_ms(None);
    // A process that is just stopping may still hold the lock for a moment.
    let mut tries = 0;
    let db = loop {
        match config.open() {
            Ok(db) => break db,
            // sled reports a held lock as the I/O error "could not acquire lock on …".
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if tries == 60 {
                    return Err(StoreError::Locked {
                        path: dir.display().to_string(),
                    });
                }
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            // sled says "Unsupported" for a settings file it cannot read: damaged, or written
            // by a sled this build cannot read; either way it must not be started over.
            Err(
                source @ (sled::Error::Corruption { .. }
                | sled::Error::ReportableBug(_)
                | sled::Error::Unsupported(_)),
            ) => {
                return Err(StoreError::Damaged {
                    path: path.display().to_string(),
                    source,
                })
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: dir.display().to_string(),
                    source,
                })
            }
        }
    };
    Ok(Trees {
        events: db.open_tree("events")?,
        event_ids: db.open_tree("event_ids")?,
        outbox: db.open_tree("outbox")?,
        pending: db.open_tree("outbox_pending")?,
        dead: db.open_tree("outbox_dead")?,
        meta: db.open_tree("meta")?,
        expiry: db.open_tree("expiry")?,
        db,
    })
}

fn remove_half_written_snapshots(db: &Path) {
    let Ok(entries) = std::fs::read_dir(db) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    tracing::warn!(file = %entry.path().display(), "removed a snapshot that sled left half-written")
                }
                Err(e) => {
                    tracing::warn!(file = %entry.path().display(), error = %e, "cannot remove a half-written snapshot")
                }
            }
        }
    }
}

/// A sled transaction's failure as a store error: the one mapping every commit uses.
fn transaction_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => StoreError::Sled(e),
    }
}

/// The open sled database and its fixed trees.
#[derive(Debug)]
pub(crate) struct Trees {
    pub(crate) db: sled::Db,
    pub(crate) events: sled::Tree,
    pub(crate) event_ids: sled::Tree,
    pub(crate) outbox: sled::Tree,
    /// The ids of the pending deliveries: the outbox keeps every delivery ever sent (for
    /// `partnerwatch outbox`), and a delivery pass reads only what is waiting.
    pub(crate) pending: sled::Tree,
    /// The ids of the dead-lettered deliveries (for `/healthz` and `outbox --dead`).
    pub(crate) dead: sled::Tree,
    pub(crate) meta: sled::Tree,
    pub(crate) expiry: sled::Tree,
}

/// The database as the clones of a [`Store`] share it: open, or closed after a storage
/// error until [`Store::reopen`] succeeds.
#[derive(Debug)]
enum Cell {
    Open(Arc<Trees>),
    Closed(String),
}

/// The state database. Clones share one database; after a storage error (a full disk, an
/// I/O error) sled refuses every later write, so the daemon closes and reopens it
/// ([`Store::reopen`]): what was not flushed is dropped, what was flushed is read again.
#[derive(Debug, Clone)]
pub struct Store {
    cell: Arc<RwLock<Cell>>,
    dir: PathBuf,
    history_versions: usize,
}

impl Store {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let store = Store {
            cell: Arc::new(RwLock::new(Cell::Open(Arc::new(open_trees(dir)?)))),
            dir: dir.to_path_buf(),
            history_versions: crate::config::DEFAULT_HISTORY_VERSIONS,
        };
        store.index_statuses()?;
        Ok(store)
    }

    /// The open trees, or why the database is closed.
    pub(crate) fn t(&self) -> Result<Arc<Trees>, StoreError> {
        match &*self.cell.read().expect("store cell") {
            Cell::Open(trees) => Ok(Arc::clone(trees)),
            Cell::Closed(why) => Err(StoreError::Closed(why.clone())),
        }
    }

    /// Closes the database and opens it again from what is on disk: after a storage error
    /// sled refuses every later write, and only a fresh open clears that. What was not
    /// flushed is dropped (a sweep that failed to commit is swept again; a delivery whose
    /// "sent" was not written may go out once more). If it cannot be opened yet (the disk is
    /// still full), the store stays closed and every call says why until a later reopen.
    pub fn reopen(&self) -> Result<(), StoreError> {
        let mut cell = self.cell.write().expect("store cell");
        if let Cell::Open(trees) = &*cell {
            // A sweep or a delivery in flight still reads the old database; its file lock
            // is released only when the last handle goes, so try again on a later tick.
            if Arc::strong_count(trees) > 1 {
                return Err(StoreError::Busy);
            }
        }
        // The old database goes first: a second open in this process waits for its lock.
        *cell = Cell::Closed("the state database is being reopened".into());
        match open_trees(&self.dir) {
            Ok(trees) => {
                *cell = Cell::Open(Arc::new(trees));
                Ok(())
            }
            Err(e) => {
                *cell = Cell::Closed(e.to_string());
                Err(e)
            }
        }
    }

    /// Sets how many earlier versions of each record are kept.
    pub fn with_history_versions(mut self, versions: usize) -> Self {
        self.history_versions = versions;
        self
    }

    /// Every entry of the expiry clock: (referral id, state as JSON).
    pub fn expiry_entries(&self) -> Result<Vec<(String, sled::IVec)>, StoreError> {
        self.t()?
            .expiry
            .iter()
            .map(|item| {
                let (k, v) = item?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v))
            })
            .collect()
    }

    /// Writes and flushes a marker: whether the database can be written now (after a
    /// storage failure, before the daemon says it works again).
    pub fn probe(&self, now: jiff::Timestamp) -> Result<(), StoreError> {
        let t = self.t()?;
        t.meta
            .insert(b"storage_probe", &now.as_millisecond().to_be_bytes())?;
        t.db.flush()?;
        Ok(())
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.t()?.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivery, DeliveryStatus, Event, EventKind};
    use jiff::Timestamp;

    fn event(n: i64, at: Timestamp) -> Event {
        Event {
            id: format!("e{n}"),
            kind: EventKind::ReferralNew,
            source: "referrals".into(),
            entity_id: format!("r{n}"),
            detected_at: at,
            record: serde_json::json!({}).into(),
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
    fn events_and_history_are_kept_packed_and_read_back_whole_as_are_those_kept_as_json() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let at: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
        let record = crate::sim::referrals::new_referral(&mut rng, at, "https://example.test");
        let raw = serde_json::to_vec(&record).unwrap();
        let mut first = event(1, at);
        first.record = record.clone().into();
        let commit = SweepCommit {
            dataset: "referrals".into(),
            upserts: vec![("r1".into(), content_hash(&raw), raw.clone())],
            ..Default::default()
        };
        store.commit_sweep(&commit, &[first.clone()], &[]).unwrap();
        let stored = store
            .records("referrals")
            .unwrap()
            .get("r1")
            .unwrap()
            .unwrap();
        let commit = SweepCommit {
            dataset: "referrals".into(),
            history: vec![("r1".into(), stored.packed.to_vec())],
            completed_at: Some(at),
            ..Default::default()
        };
        store.commit_sweep(&commit, &[], &[]).unwrap();

        assert_eq!(store.event("e1").unwrap().unwrap().record, record);
        assert_eq!(
            store.history("referrals", "r1").unwrap(),
            vec![(at, record.clone())]
        );
        // Kept in fewer bytes than their JSON.
        let t = store.t().unwrap();
        let (_, kept) = t.events.iter().next().unwrap().unwrap();
        assert!(kept.len() < serde_json::to_vec(&first).unwrap().len() * 2 / 3);
        let history = store.history_tree("referrals").unwrap();
        let (_, kept) = history.iter().next().unwrap().unwrap();
        assert!(kept.len() < (8 + raw.len()) * 2 / 3);

        // As logs and histories before packing kept them: JSON as it is.
        let mut old = event(2, at);
        old.record = record.clone().into();
        t.events
            .insert(99u64.to_be_bytes(), serde_json::to_vec(&old).unwrap())
            .unwrap();
        t.event_ids.insert("e2", &99u64.to_be_bytes()).unwrap();
        assert_eq!(store.event("e2").unwrap().unwrap().record, record);
        let mut key = records::history_prefix("r2");
        key.extend_from_slice(&1u64.to_be_bytes());
        let mut value = at.as_millisecond().to_be_bytes().to_vec();
        value.extend_from_slice(&raw);
        history.insert(key, value).unwrap();
        assert_eq!(
            store.history("referrals", "r2").unwrap(),
            vec![(at, record)]
        );
    }

    /// Five sweeps, each replacing `id`'s version with `v` and counting change `counts(v)`.
    fn replace_five_times(store: &Store, id: &str, completed: bool, counts: fn(u64) -> u64) {
        let at: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        for v in 1..=5u64 {
            let commit = SweepCommit {
                dataset: "referrals".into(),
                history: vec![(id.into(), format!(r#"{{"v":{v}}}"#).into_bytes())],
                versions: vec![(id.into(), counts(v))],
                completed_at: completed.then_some(at + jiff::SignedDuration::from_secs(v as i64)),
                ..Default::default()
            };
            store.commit_sweep(&commit, &[], &[]).unwrap();
        }
    }

    fn kept(store: &Store, id: &str) -> Vec<serde_json::Value> {
        let history = store.history("referrals", id).unwrap();
        history.into_iter().map(|(_, v)| v["v"].clone()).collect()
    }

    #[test]
    fn history_keeps_the_latest_versions_also_where_changes_were_not_always_counted() {
        // Baselined by this version: every change counted.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_history_versions(2);
        replace_five_times(&store, "r1", true, |v| v);
        assert_eq!(kept(&store, "r1"), [4, 5]);
        // Baselined before changes were counted (no marker): counts say less than the
        // history holds, and are not trusted.
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_history_versions(2);
        replace_five_times(&store, "r2", false, |_| 1);
        assert_eq!(kept(&store, "r2"), [4, 5]);
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
                        MetaKey::SweepFailed {
                            at: t0 + hour * h,
                            source: "referrals".into(),
                        },
                        Some(MetaValue::Marker),
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
            body: crate::model::Body::Text { text: "b".into() },
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
            assert_eq!(
                store.t().unwrap().pending.len(),
                2,
                "the sent one left the index"
            );
            let mut second = pending[0].clone();
            second.status = DeliveryStatus::Dead;
            store.update_delivery(&second).unwrap();
            assert_eq!(store.outbox_counts().unwrap(), (1, 1));
            second.status = DeliveryStatus::Pending; // `outbox --retry`
            store.update_delivery(&second).unwrap();
            assert_eq!(store.outbox_counts().unwrap(), (2, 0));
            // A state folder from before the index: no index, no marker.
            store.t().unwrap().pending.clear().unwrap();
            store
                .t()
                .unwrap()
                .meta
                .remove(b"outbox_status_index")
                .unwrap();
            store.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let pending = store.deliveries(Some(DeliveryStatus::Pending)).unwrap();
        assert_eq!(pending.iter().map(|d| d.id).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(store.deliveries(None).unwrap().len(), 3);
        assert_eq!(store.outbox_counts().unwrap(), (2, 0));
    }
}
