//! Detectors: compare a complete new record set with the stored one (and, later, with the
//! clock) and produce [`Event`](crate::model::Event)s.
//!
//! [`sweep::SweepDiff`] does the comparison while pages stream in: an unchanged record costs a
//! hash compare against the store, nothing else; removals come from the set of ids seen.
//! [`diff`] turns two versions of a record into field-level changes; the per-dataset modules
//! turn record changes into events. Must never: announce anything for a baseline sweep except
//! time-based events, or derive removals from an incomplete sweep.

pub mod copilot;
pub mod diff;
pub mod expiry;
pub mod insights;
pub mod license;
pub mod referrals;
pub mod sweep;
pub mod system;

pub use sweep::{RecordChange, SweepDiff, SweepOutcome};
