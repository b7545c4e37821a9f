//! What a digest says, computed from the store (the current records) and the event log (what
//! happened in the period). Every section is `None` when it has nothing to say, so templates
//! leave it out rather than show it empty.
//!
//! Must never: count a thing twice (an event detected once is stored once; per record, the
//! net move over the period is what counts).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::detect::expiry::deadline_of;
use crate::model::event_data::{ActiveLicenses, Closed, EventData, StatusChanged, UsageChanged};
use crate::model::{field, Event, EventKind};
use crate::store::{Store, StoreError};
use crate::templates::helpers::{money, relative};

mod copilot;
mod health;
mod licenses;
mod mci;
mod referrals;

use copilot::copilot_section;
pub use copilot::{Copilot, HealthCount, Move, Whitespace};
use health::health_section;
pub use health::Health;
use licenses::license_section;
pub use licenses::{Drop, Licenses};
use mci::mci_section;
pub use mci::{Mci, Milestone, Play};
#[cfg(test)]
use referrals::referral_line;
use referrals::{referral_section, ReferralScan};
pub use referrals::{Money, ReferralLine, Referrals, Week};

/// How many items a "top" list shows (largest new, waiting longest, whitespace, drops).
pub const TOP: usize = 5;

/// How many items a full list shows at most (expiring, accepted, won, lost, declined); the
/// rest is counted in its `*_more` field.
pub const LIST: usize = 10;

/// How far ahead "expiring" looks.
pub const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Weeks in the pipeline chart.
pub const PIPELINE_WEEKS: usize = 8;

/// The period a digest covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    /// The week that ends at `end`.
    pub fn week_to(end: Timestamp) -> Period {
        Period {
            start: end - SignedDuration::from_hours(7 * 24),
            end,
        }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Content {
    pub referrals: Option<Referrals>,
    pub copilot: Option<Copilot>,
    pub mci: Option<Mci>,
    pub licenses: Option<Licenses>,
    pub health: Option<Health>,
    /// New referrals per week, oldest first (the pipeline chart).
    pub pipeline: Vec<Week>,
}

/// What the content is computed from besides the store.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub period: Period,
    pub ranking: &'a [String],
    /// The refresh token file, if delegated sign-in is configured.
    pub refresh_file: Option<&'a std::path::Path>,
}

/// Computes the digest's content.
pub fn compute(store: &Store, inputs: &Inputs<'_>) -> Result<Content, StoreError> {
    let period = inputs.period;
    let events: Vec<Event> = store
        .events_since(period.start)?
        .into_iter()
        .filter(|e| period.contains(e.detected_at))
        .collect();
    // One referral at a time: a large pipeline is never held as JSON trees all at once.
    let mut scan = ReferralScan::new(period);
    for item in store.records("referrals")?.iter() {
        scan.add(&item?.1.json()?);
    }
    Ok(Content {
        pipeline: scan.weeks(),
        referrals: referral_section(scan, &events),
        copilot: copilot_section(store, &events, inputs)?,
        mci: mci_section(store, &events)?,
        licenses: license_section(&events),
        health: health_section(store, &events, inputs)?,
    })
}

fn records(store: &Store, dataset: &str) -> Result<Vec<Value>, StoreError> {
    store
        .records(dataset)?
        .iter()
        .map(|item| item.and_then(|(_, r)| r.json()))
        .collect()
}

fn text(r: &Value, name: &str) -> String {
    match field(r, name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn time(r: &Value, name: &str) -> Option<Timestamp> {
    field(r, name)?.as_str()?.parse().ok()
}

fn tenant_name(r: &Value) -> String {
    [
        "customerName",
        "tenantName",
        "tpidName",
        "tenantId",
        "tenantID",
    ]
    .iter()
    .map(|k| one_line(&text(r, k)))
    .find(|s| !s.is_empty())
    .unwrap_or_default()
}

/// A name as one line: newlines and runs of spaces in customer data become one space, so a
/// list item stays one item.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_left_unused_for_weeks_is_flagged_before_it_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let end: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
        let file = dir.path().join("refresh_token");
        std::fs::write(&file, "rt").unwrap();
        let ranking: Vec<String> = Vec::new();
        let at = |used_days_ago: i64| {
            let used = end - SignedDuration::from_hours(24 * used_days_ago);
            let f = std::fs::File::options().write(true).open(&file).unwrap();
            f.set_modified(std::time::SystemTime::from(used)).unwrap();
            let inputs = Inputs {
                period: Period::week_to(end),
                ranking: &ranking,
                refresh_file: Some(&file),
            };
            compute(&store, &inputs).unwrap().health
        };
        assert!(at(3).is_none(), "recently used: nothing to say");
        let health = at(80).expect("a warning");
        let warning = health.sign_in.unwrap();
        assert!(warning.contains("lapses in 10 days"), "{warning}");
        assert_eq!(health.sweeps_failed, 0);
    }

    #[test]
    fn names_from_customer_data_stay_on_one_line() {
        let r =
            serde_json::json!({"customerName": "Proseware\nHoldings  \"Ltd\"", "tenantId": "t"});
        assert_eq!(tenant_name(&r), "Proseware Holdings \"Ltd\"");
        let referral = serde_json::json!({"id": "x", "name": "Deal\r\nline two",
            "customerProfile": {"name": "Contoso\nEurope"}, "details": {"dealValue": 5, "currency": "EUR"}});
        let line = referral_line(&referral, String::new());
        assert_eq!(
            (line.name.as_str(), line.customer.as_str()),
            ("Deal line two", "Contoso Europe")
        );
        assert_eq!(line.value, "5 EUR");
    }
}
