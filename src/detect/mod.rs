//! Detectors: compare a complete new record set with the stored one (and with the clock:
//! [`expiry`]) and produce [`Event`](crate::model::Event)s.
//!
//! [`sweep::SweepDiff`] does the comparison while pages stream in: an unchanged record costs a
//! hash compare against the store, nothing else; removals come from the set of ids seen.
//! [`diff`] turns two versions of a record into field-level changes; the per-dataset modules
//! turn record changes into events. Must never: announce anything for a baseline sweep except
//! time-based events, or derive removals from an incomplete sweep.

pub mod copilot;
pub mod diff;
pub mod expiry;
pub mod health;
pub mod insights;
pub mod license;
pub mod referrals;
pub mod sweep;
pub mod system;

pub use sweep::{RecordChange, SweepDiff, SweepOutcome};

use jiff::Timestamp;
use serde_json::Value;

use crate::model::event::event_id;
use crate::model::{Change, Dataset, Event, EventKind};
use crate::store::{MetaWrite, ThresholdKey};

/// What the detectors weigh a sweep's changes with, besides the changes themselves.
pub struct Judge<'a> {
    /// The first complete sweep of the dataset: it announces nothing.
    pub baseline: bool,
    pub now: Timestamp,
    pub copilot: &'a copilot::Judging,
    /// Which side of a threshold a value was last seen on (`true`: above).
    pub remembered: &'a dyn Fn(&ThresholdKey) -> Option<bool>,
}

/// The dataset → detector table: the events a sweep's changes raise, and what the detector
/// wants remembered for the next sweep. The referral deadlines are the clock's, in [`expiry`].
pub fn detect(
    dataset: Dataset,
    changes: Vec<RecordChange>,
    judge: &Judge<'_>,
) -> (Vec<Event>, Vec<MetaWrite>) {
    let (baseline, now) = (judge.baseline, judge.now);
    let summary =
        |kind, changes| copilot::detect_summary(kind, dataset.name(), changes, baseline, now);
    match dataset {
        Dataset::Referrals => (referrals::detect(changes, baseline, now), Vec::new()),
        Dataset::LicenseUsage => (license::detect(changes, baseline, now), Vec::new()),
        Dataset::Copilot => copilot::detect(changes, baseline, now, judge.copilot, |key| {
            (judge.remembered)(key)
        }),
        Dataset::CopilotSummary => (
            summary(EventKind::CopilotSummaryChanged, changes),
            Vec::new(),
        ),
        Dataset::AdoptionSummary => (
            summary(EventKind::AdoptionSummaryChanged, changes),
            Vec::new(),
        ),
        Dataset::MciSummary => (summary(EventKind::MciSummaryChanged, changes), Vec::new()),
        Dataset::MciPerformance => (insights::detect_mci(changes, baseline, now), Vec::new()),
        Dataset::PartnerReferrals => (
            insights::detect_partner_referrals(changes, baseline, now),
            Vec::new(),
        ),
    }
}

/// An event of `kind` about one record.
#[allow(clippy::too_many_arguments)]
pub fn record_event(
    kind: EventKind,
    source: &str,
    entity: &str,
    hashes: &[u128],
    record: impl Into<crate::model::Doc>,
    previous: Option<crate::model::Doc>,
    changes: Vec<Change>,
    data: Value,
    now: Timestamp,
) -> Event {
    let hash_bytes: Vec<[u8; 16]> = hashes.iter().map(|h| h.to_le_bytes()).collect();
    let mut parts: Vec<&[u8]> = vec![
        kind.as_str().as_bytes(),
        source.as_bytes(),
        entity.as_bytes(),
    ];
    parts.extend(hash_bytes.iter().map(|h| h.as_slice()));
    Event {
        id: event_id(&parts),
        kind,
        source: source.to_string(),
        entity_id: entity.to_string(),
        detected_at: now,
        record: record.into(),
        previous,
        changes,
        data,
    }
}
