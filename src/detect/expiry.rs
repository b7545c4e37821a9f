//! The 14-day clock. An incoming referral (or one without a direction) that is New/Pending
//! or New/Received must be answered by its deadline — `expirationDateTime`, else `createdDateTime` + 14 days — or Partner Center
//! archives it as Expired. For every such referral the store keeps an [`ExpiryState`]; each
//! complete sweep (the baseline too) checks them against the clock and the reminder
//! thresholds of the rules that listen (`before: [7d, 3d, 1d, 6h]`):
//!
//! - each threshold fires `referral.expiring` once per referral and deadline;
//! - after downtime only the most urgent crossed threshold fires, the others are marked done;
//! - a referral that is accepted, declined or closed leaves the clock;
//! - a deadline that passes while the referral is still New fires `referral.expired` once,
//!   and so does a referral that leaves the list after its deadline (archived as Expired);
//! - an outgoing referral is the other party's to answer: it is never on the clock.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::RecordChange;
use crate::config::Every;
use crate::model::event::event_id;
use crate::model::event_data::{EventData, Expiring};
use crate::model::referral::{Direction, ReferralStatus, ReferralSubstatus, ReferralView};
use crate::model::{Dataset, Doc, Event, EventKind};

/// The documented response window.
pub const RESPONSE_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);

/// The thresholds used when a rule listens to `referral.expiring` without `before`.
pub const DEFAULT_THRESHOLDS: [Duration; 4] = [
    Duration::from_secs(7 * 86_400),
    Duration::from_secs(3 * 86_400),
    Duration::from_secs(86_400),
    Duration::from_secs(6 * 3600),
];

/// One referral on the clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpiryState {
    pub deadline: Timestamp,
    /// Thresholds (in seconds) already announced for this deadline.
    #[serde(default)]
    pub fired: Vec<u64>,
}

/// The deadline of a referral that is waiting for an answer; `None` if it is not (any more).
pub fn deadline_of(record: &Value) -> Option<Timestamp> {
    deadline_of_view(&ReferralView::deserialize(record).ok()?)
}

/// Whether a referral, as the raw JSON of a page, is waiting for an answer: read without
/// building a tree (a baseline asks this of every record). An error only if it is not JSON.
/// `raw` is UTF-8, as every record a source takes is checked to be: serde_json does not look
/// at the bytes of a string it skips.
pub fn waits(raw: &[u8]) -> Result<bool, serde_json::Error> {
    match serde_json::from_slice::<ReferralView>(raw) {
        Ok(view) => Ok(deadline_of_view(&view).is_some()),
        // A field of an unexpected type, or spelled twice: the tree decides, as it does
        // for every other record.
        Err(_) => serde_json::from_slice::<Value>(raw).map(|r| deadline_of(&r).is_some()),
    }
}

/// [`deadline_of`] a referral held as a [`Doc`]: read from its text, without building a tree,
/// where it is still text (as [`waits`] reads a baseline's records).
pub fn deadline_of_doc(record: &Doc) -> Option<Timestamp> {
    match record.text() {
        Some(text) if !record.is_parsed() => match serde_json::from_slice::<ReferralView>(text) {
            Ok(view) => deadline_of_view(&view),
            Err(_) => deadline_of(record.value()),
        },
        _ => deadline_of(record.value()),
    }
}

fn deadline_of_view(view: &ReferralView) -> Option<Timestamp> {
    // "Not responded to" is `direction eq 'Incoming' and substatus eq 'Pending'`
    // (api-docs/referrals-list.txt): a referral the partner sent waits for someone else.
    if view.direction == Some(Direction::Outgoing) || view.status != Some(ReferralStatus::New) {
        return None;
    }
    if !matches!(
        view.substatus,
        Some(ReferralSubstatus::Pending | ReferralSubstatus::Received)
    ) {
        return None;
    }
    deadline_from(view)
}

fn deadline_from(view: &ReferralView) -> Option<Timestamp> {
    let parse = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<Timestamp>().ok());
    parse(&view.expiration_date_time)
        .or_else(|| parse(&view.created_date_time).map(|c| c + RESPONSE_WINDOW))
}

/// The referrals on the clock as the store holds them, and what a sweep changes about them.
#[derive(Debug, Default)]
pub struct ExpiryClock {
    states: BTreeMap<String, ExpiryState>,
    updates: Vec<(String, Option<ExpiryState>)>,
}

impl ExpiryClock {
    /// The clock from the store's entries (id, state as JSON); an entry that cannot be read is
    /// dropped with a warning.
    pub fn load<B: AsRef<[u8]>>(entries: impl IntoIterator<Item = (String, B)>) -> ExpiryClock {
        let mut states = BTreeMap::new();
        for (id, bytes) in entries {
            match serde_json::from_slice(bytes.as_ref()) {
                Ok(state) => {
                    states.insert(id, state);
                }
                Err(e) => {
                    tracing::warn!(referral = %id, error = %e, "dropping an unreadable expiry entry")
                }
            }
        }
        ExpiryClock {
            states,
            updates: Vec::new(),
        }
    }

    /// `referral.expired` for each referral on the clock that left the list (a removal among
    /// `changes`) after its deadline: Partner Center archives a referral nobody answered.
    pub fn left_after_deadline(&self, changes: &[RecordChange], now: Timestamp) -> Vec<Event> {
        changes
            .iter()
            .filter(|c| c.new.is_none())
            .filter_map(|c| {
                let state = self.states.get(&c.entity_id)?;
                let (_, old) = c.old.as_ref()?;
                (now >= state.deadline).then(|| {
                    expired_event(
                        &c.entity_id,
                        old.value().clone(),
                        state.deadline,
                        now,
                        "it left the list after its deadline without an answer",
                    )
                })
            })
            .collect()
    }

    /// Puts the referrals this sweep saw waiting on the clock, and takes off those that left.
    pub fn follow(&mut self, changes: &[RecordChange]) {
        let updates = updates_from_changes(changes, |id| self.states.get(id).cloned());
        self.apply(updates);
    }

    /// Checks every referral on the clock at `now` against the reminder `thresholds`;
    /// `record` finds the current version of a referral.
    pub fn check(
        &mut self,
        thresholds: &[Duration],
        now: Timestamp,
        record: impl Fn(&str) -> Option<Value>,
    ) -> Vec<Event> {
        let (events, updates) = evaluate(&self.states, thresholds, now, record);
        self.apply(updates);
        events
    }

    fn apply(&mut self, updates: Vec<(String, Option<ExpiryState>)>) {
        for (id, state) in &updates {
            match state {
                Some(s) => self.states.insert(id.clone(), s.clone()),
                None => self.states.remove(id),
            };
        }
        self.updates.extend(updates);
    }

    /// The entries to write with the sweep: (id, state as JSON, or removal).
    pub fn into_writes(self) -> Vec<(String, Option<Vec<u8>>)> {
        self.updates
            .into_iter()
            .map(|(id, s)| {
                (
                    id,
                    s.map(|s| serde_json::to_vec(&s).expect("expiry state serializes")),
                )
            })
            .collect()
    }
}

/// The clock entries that change with this sweep's record changes: (id, new state or removal).
pub fn updates_from_changes(
    changes: &[RecordChange],
    current: impl Fn(&str) -> Option<ExpiryState>,
) -> Vec<(String, Option<ExpiryState>)> {
    let mut out = Vec::new();
    for c in changes {
        let deadline = c.new.as_ref().and_then(|(_, r)| deadline_of_doc(r));
        let existing = current(&c.entity_id);
        match (deadline, existing) {
            (None, None) => {}
            (None, Some(_)) => out.push((c.entity_id.clone(), None)),
            (Some(d), Some(s)) if s.deadline == d => {}
            (Some(d), _) => out.push((
                c.entity_id.clone(),
                Some(ExpiryState {
                    deadline: d,
                    fired: Vec::new(),
                }),
            )),
        }
    }
    out
}

/// Checks every referral on the clock at `now`. Returns the events and the state changes.
pub fn evaluate(
    states: &BTreeMap<String, ExpiryState>,
    thresholds: &[Duration],
    now: Timestamp,
    record: impl Fn(&str) -> Option<Value>,
) -> (Vec<Event>, Vec<(String, Option<ExpiryState>)>) {
    let mut events = Vec::new();
    let mut updates = Vec::new();
    for (id, state) in states {
        if now >= state.deadline {
            if let Some(r) = record(id) {
                events.push(expired_event(
                    id,
                    r,
                    state.deadline,
                    now,
                    "the deadline passed without an answer",
                ));
            }
            updates.push((id.clone(), None));
            continue;
        }
        let crossed: Vec<u64> = thresholds
            .iter()
            .map(Duration::as_secs)
            .filter(|t| !state.fired.contains(t))
            .filter(|t| now >= state.deadline - SignedDuration::from_secs(*t as i64))
            .collect();
        let Some(&most_urgent) = crossed.iter().min() else {
            continue;
        };
        if let Some(r) = record(id) {
            events.push(expiring_event(id, r, state.deadline, most_urgent, now));
        }
        let mut next = state.clone();
        next.fired.extend(crossed);
        next.fired.sort_unstable();
        next.fired.dedup();
        updates.push((id.clone(), Some(next)));
    }
    (events, updates)
}

fn expiring_event(
    id: &str,
    record: Value,
    deadline: Timestamp,
    threshold: u64,
    now: Timestamp,
) -> Event {
    let left = deadline.duration_since(now);
    let label = Every(Duration::from_secs(threshold)).to_string();
    let deadline_s = deadline.to_string();
    Event {
        id: event_id(&[
            b"referral.expiring",
            b"referrals",
            id.as_bytes(),
            deadline_s.as_bytes(),
            &threshold.to_le_bytes(),
        ]),
        kind: EventKind::ReferralExpiring,
        source: Dataset::Referrals.name().into(),
        entity_id: id.to_string(),
        detected_at: now,
        record: record.into(),
        previous: None,
        changes: Vec::new(),
        data: Expiring {
            deadline: deadline_s,
            hours_left: left.as_hours(),
            threshold: label,
            threshold_secs: threshold,
        }
        .to_data(),
    }
}

/// `referral.expired`, with an id that depends only on the referral and its deadline, so
/// the clock and the API's own `Expired` substatus announce it once between them.
pub fn expired_event(
    id: &str,
    record: Value,
    deadline: Timestamp,
    now: Timestamp,
    how: &str,
) -> Event {
    let deadline_s = deadline.to_string();
    Event {
        id: event_id(&[
            b"referral.expired",
            b"referrals",
            id.as_bytes(),
            deadline_s.as_bytes(),
        ]),
        kind: EventKind::ReferralExpired,
        source: Dataset::Referrals.name().into(),
        entity_id: id.to_string(),
        detected_at: now,
        record: record.into(),
        previous: None,
        changes: Vec::new(),
        data: json!({ "deadline": deadline_s, "how": how }),
    }
}

/// The deadline a referral had, whatever its state now (for `referral.expired` from the API).
pub fn any_deadline(record: &Value) -> Option<Timestamp> {
    let view = ReferralView::deserialize(record).ok()?;
    deadline_from(&view)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn states(deadline: &str) -> BTreeMap<String, ExpiryState> {
        BTreeMap::from([(
            "r1".to_string(),
            ExpiryState {
                deadline: t(deadline),
                fired: vec![],
            },
        )])
    }

    fn rec(_: &str) -> Option<Value> {
        Some(json!({"id": "r1"}))
    }

    #[test]
    fn deadline_prefers_expiration_then_created_plus_14_days() {
        let r = json!({"status": "New", "substatus": "Pending", "createdDateTime": "2026-11-01T00:00:00.0000000Z"});
        assert_eq!(deadline_of(&r), Some(t("2026-11-15T00:00:00Z")));
        let r = json!({"Status": "new", "substatus": "Received", "createdDateTime": "2026-11-01T00:00:00Z", "expirationDateTime": "2026-11-10T12:00:00Z"});
        assert_eq!(deadline_of(&r), Some(t("2026-11-10T12:00:00Z")));
        let accepted = json!({"status": "Active", "substatus": "Accepted", "createdDateTime": "2026-11-01T00:00:00Z"});
        assert_eq!(deadline_of(&accepted), None);
        assert_eq!(
            deadline_of(&json!({"status": "New", "substatus": "Pending"})),
            None
        );
    }

    #[test]
    fn after_downtime_only_the_most_urgent_threshold_fires() {
        let th = DEFAULT_THRESHOLDS;
        // 20 hours before the deadline: 7d, 3d and 1d are all crossed; only 1d is announced.
        let (events, updates) = evaluate(
            &states("2026-11-23T20:00:00Z"),
            &th,
            t("2026-11-23T00:00:00Z"),
            rec,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data["threshold"], "1d");
        assert_eq!(events[0].data["hours_left"], 20);
        let next = updates[0].1.clone().unwrap();
        assert_eq!(next.fired, vec![86_400, 3 * 86_400, 7 * 86_400]);
        // An hour later nothing new; at 5 hours left the 6h reminder fires.
        let s = BTreeMap::from([("r1".to_string(), next)]);
        assert!(evaluate(&s, &th, t("2026-11-23T01:00:00Z"), rec)
            .0
            .is_empty());
        let (events, _) = evaluate(&s, &th, t("2026-11-23T15:00:00Z"), rec);
        assert_eq!(events[0].data["threshold"], "6h");
    }

    /// `waits` reads a record into a few fields and falls back to the tree when that fails;
    /// the tree (`deadline_of` of the parsed record) is what it must agree with, on
    /// well-formed records and on every kind of odd one.
    #[test]
    fn waiting_read_from_bytes_agrees_with_the_tree() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(15);
        let now = t("2026-11-23T08:00:00Z");
        let (mut waiting, mut odd) = (0, 0);
        for i in 0..3_400 {
            let created = now - SignedDuration::from_hours(rng.random_range(0..2_000));
            let mut r = crate::sim::referrals::new_referral(&mut rng, created, "https://x");
            let (status, substatus) = [
                ("New", "Pending"),
                ("new", "RECEIVED"),
                ("New", "Accepted"),
                ("Active", "Accepted"),
                ("Closed", "Won"),
            ][rng.random_range(0..5)];
            r["status"] = json!(status);
            r["substatus"] = json!(substatus);
            if rng.random_bool(0.3) {
                r["direction"] = json!(["Incoming", "Outgoing", "outgoing"][i % 3]);
            }
            if rng.random_bool(0.3) {
                r["expirationDateTime"] = json!((created + RESPONSE_WINDOW).to_string());
            }
            let mut raw = serde_json::to_string(&r).unwrap();
            match i % 10 {
                // A key spelled with an escape; an escaped date.
                0 => raw = raw.replacen("\"status\"", "\"\\u0073tatus\"", 1),
                1 => raw = raw.replacen("Z\"", "\\u005a\"", 1),
                // A key given twice (the tree keeps the last), or under its alias too.
                2 => raw.insert_str(raw.len() - 1, ",\"status\":\"Closed\""),
                3 => raw.insert_str(raw.len() - 1, ",\"Status\":\"New\""),
                // A field of the wrong type, a null, a value nested in a skipped field.
                4 => raw = raw.replacen(&format!("\"status\":\"{status}\""), "\"status\":7", 1),
                5 => {
                    raw = raw.replacen(
                        &format!("\"substatus\":\"{substatus}\""),
                        "\"substatus\":null",
                        1,
                    )
                }
                6 => raw.insert_str(raw.len() - 1, ",\"x\":[{\"status\":\"New\"},\"]}\"]"),
                // Not JSON: cut short, trailing bytes.
                7 => {
                    let cut = (0..=raw.len() / 2).rev().find(|&i| raw.is_char_boundary(i));
                    raw.truncate(cut.unwrap_or(0));
                }
                8 => raw.push_str(" x"),
                // Not JSON where only a skipped field is: a bad escape, a trailing comma.
                9 if i % 40 == 19 => raw.insert_str(raw.len() - 1, ",\"x\":[\"\\q\"]"),
                9 if i % 40 == 39 => raw.insert_str(raw.len() - 1, ",\"x\":{\"y\":[1,]}"),
                _ => {}
            }
            let tree =
                serde_json::from_slice::<Value>(raw.as_bytes()).map(|v| deadline_of(&v).is_some());
            match (waits(raw.as_bytes()), tree) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a, b, "{raw}");
                    waiting += usize::from(a);
                }
                (Err(_), Err(_)) => odd += 1,
                (a, b) => panic!("waits {a:?}, the tree {b:?}: {raw}"),
            }
        }
        assert!(
            waiting > 300 && odd >= 500,
            "{waiting} waiting, {odd} not JSON"
        );
    }

    #[test]
    fn passing_the_deadline_fires_expired_once_and_leaves_the_clock() {
        let (events, updates) = evaluate(
            &states("2026-11-23T00:00:00Z"),
            &DEFAULT_THRESHOLDS,
            t("2026-11-23T00:00:00Z"),
            rec,
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::ReferralExpired);
        assert_eq!(updates, vec![("r1".to_string(), None)]);
    }
}
