//! Events of the Partner Insights datasets: Copilot opportunities per customer tenant
//! (`copilot.new`, `.changed`, `.removed`, `.health_changed`, `.threshold_crossed`) and the
//! partner-level summaries (`copilot_summary.changed`, `adoption_summary.changed`).
//!
//! `copilot.health_changed` ranks the eight adoption health classes (best first, overridable)
//! to say whether a tenant moved `better` or `worse`. `copilot.threshold_crossed` watches
//! numeric fields with hysteresis: a value must pass a line by `hysteresis` to count as having
//! crossed it, so a value wobbling around the line does not flap; which side of each line a
//! tenant is on is remembered in the store.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::record_event;
use super::RecordChange;
use crate::model::event::event_id;
use crate::model::{field, Dataset, Event, EventKind};
use crate::store::{MetaKey, MetaValue, MetaWrite, Side, ThresholdKey};

/// The eight adoption health classes of the API, best first.
pub const DEFAULT_RANKING: [&str; 8] = [
    "Healthy",
    "Healthy but Last Month Drop",
    "Healthy but Negative Slope",
    "Starting",
    "Failure to Adopt but Last Month Gain",
    "Big Gain & Big Drop",
    "Failure to Thrive/Adopt",
    "Failure to Launch/Start",
];

/// Where a health class stands in `ranking` (0 is best), however it is spelled: the docs
/// give the classes only as the keys of `/adoptionSummary`, and a tenant's `adoptionStatus`
/// is a bare string, so "Big Gain & Big Drop", "big gain and big drop" and "BigGainBigDrop"
/// are one class (see [`health_key`]). A class not in the ranking is logged once.
pub fn rank(ranking: &[String], status: &str) -> Option<usize> {
    let key = health_key(status);
    let found = ranking.iter().position(|r| health_key(r) == key);
    if found.is_none() && !key.is_empty() {
        static LOGGED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
        let mut logged = LOGGED.lock().expect("logged classes");
        if !logged.contains(&key) {
            logged.push(key);
            tracing::warn!(class = status, "a Copilot health class partnerwatch does not know: moves into or out of it have direction \"unknown\" (add it to sources.abss.health_ranking)");
        }
    }
    found
}

/// One spelling of a health class: its words in lower case, CamelCase split, `&` and "and"
/// and every punctuation mark left out.
pub fn health_key(status: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in status.chars() {
        if (!c.is_alphanumeric() || (c.is_uppercase() && prev_lower)) && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase();
        if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        }
    }
    words.push(word);
    words.retain(|w| !w.is_empty() && w != "and");
    words.concat()
}

/// The ranking's own spelling of `status`, or `status` as the API gave it.
pub fn canonical(ranking: &[String], status: &str) -> String {
    let key = health_key(status);
    ranking
        .iter()
        .find(|r| health_key(r) == key)
        .cloned()
        .unwrap_or_else(|| status.to_string())
}

/// How Copilot changes are judged.
#[derive(Debug, Clone)]
pub struct Judging {
    pub ranking: Vec<String>,
    pub thresholds: BTreeMap<String, Vec<f64>>,
    pub hysteresis: f64,
}

impl Default for Judging {
    fn default() -> Self {
        Self {
            ranking: DEFAULT_RANKING.iter().map(|s| s.to_string()).collect(),
            thresholds: BTreeMap::new(),
            hysteresis: 1.0,
        }
    }
}

/// The threshold line of one field of one tenant.
pub fn threshold_key(tenant: &str, name: &str, line: f64) -> ThresholdKey {
    ThresholdKey {
        dataset: Dataset::Copilot.name().to_string(),
        entity: tenant.to_string(),
        field: name.to_string(),
        line,
    }
}

/// Copilot opportunity events, and the remembered threshold sides to write:
/// which side of each threshold line each value is on now.
pub fn detect(
    changes: Vec<RecordChange>,
    baseline: bool,
    now: Timestamp,
    judging: &Judging,
    remembered: impl Fn(&ThresholdKey) -> Option<bool>,
) -> (Vec<Event>, Vec<MetaWrite>) {
    let mut events = Vec::new();
    let mut sides = Vec::new();
    if baseline {
        return (events, sides);
    }
    const SOURCE: &str = Dataset::Copilot.name();
    let empty = || Value::Object(Map::new());
    for c in changes {
        // The occurrence of this change is part of its events' ids (guarantee 10).
        let seq = u128::from(c.version);
        let id = c.entity_id;
        match (c.old, c.new) {
            (None, Some((h, new))) => events.push(record_event(
                EventKind::CopilotNew,
                SOURCE,
                &id,
                &[h, seq],
                new,
                None,
                Vec::new(),
                empty(),
                now,
            )),
            (Some((h, old)), None) => {
                for (name, lines) in &judging.thresholds {
                    for line in lines {
                        sides.push((
                            MetaKey::ThresholdSide(threshold_key(&id, name, *line)),
                            None,
                        ));
                    }
                }
                events.push(record_event(
                    EventKind::CopilotRemoved,
                    SOURCE,
                    &id,
                    &[h, seq],
                    old.into_value(),
                    None,
                    Vec::new(),
                    json!({"reason": "absent from a complete sweep"}),
                    now,
                ));
            }
            (Some((oh, old)), Some((nh, new))) => {
                let hashes = [oh, nh, seq];
                let mut follow = Vec::new();
                let status = |r: &Value| {
                    field(r, "adoptionStatus")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                let (from, to) = (status(&old), status(&new));
                let key = |s: &Option<String>| s.as_deref().map(health_key);
                // A class spelled another way is the same class: no move.
                if key(&from) != key(&to) {
                    let spelled =
                        |s: &Option<String>| s.as_deref().map(|s| canonical(&judging.ranking, s));
                    let (from, to) = (spelled(&from), spelled(&to));
                    let rank =
                        |s: &Option<String>| s.as_deref().and_then(|s| rank(&judging.ranking, s));
                    let direction = match (rank(&from), rank(&to)) {
                        (Some(a), Some(b)) if b < a => "better",
                        (Some(a), Some(b)) if b > a => "worse",
                        (Some(_), Some(_)) => "same",
                        _ => "unknown",
                    };
                    follow.push((
                        EventKind::CopilotHealthChanged,
                        json!({ "from": from, "to": to, "direction": direction }),
                        Vec::new(),
                    ));
                }
                for (name, lines) in &judging.thresholds {
                    let value = |r: &Value| field(r, name).and_then(Value::as_f64);
                    let (Some(before), Some(after)) = (value(&old), value(&new)) else {
                        continue;
                    };
                    for line in lines {
                        let key = threshold_key(&id, name, *line);
                        let was_above = remembered(&key).unwrap_or(before >= *line);
                        let is_above = if was_above {
                            after >= line - judging.hysteresis
                        } else {
                            after >= line + judging.hysteresis
                        };
                        if is_above != was_above {
                            let direction = if is_above { "up" } else { "down" };
                            let stamp = [line.to_bits().to_le_bytes()];
                            follow.push((
                                EventKind::CopilotThresholdCrossed,
                                json!({ "field": name, "threshold": line, "direction": direction, "from": before, "to": after }),
                                stamp.to_vec(),
                            ));
                        }
                        let side = if is_above { Side::Above } else { Side::Below };
                        sides.push((MetaKey::ThresholdSide(key), Some(MetaValue::Side(side))));
                    }
                }
                let follow: Vec<Event> = follow
                    .into_iter()
                    .map(|(kind, data, extra)| {
                        let mut e = record_event(
                            kind,
                            SOURCE,
                            &id,
                            &hashes,
                            new.clone(),
                            Some(old.clone()),
                            Vec::new(),
                            data,
                            now,
                        );
                        if !extra.is_empty() {
                            let mut parts: Vec<&[u8]> = vec![e.id.as_bytes()];
                            parts.extend(extra.iter().map(|b| b.as_slice()));
                            e.id = event_id(&parts);
                        }
                        e
                    })
                    .collect();
                events.push(record_event(
                    EventKind::CopilotChanged,
                    SOURCE,
                    &id,
                    &hashes,
                    new,
                    Some(old),
                    c.changes,
                    empty(),
                    now,
                ));
                events.extend(follow);
            }
            (None, None) => {}
        }
    }
    (events, sides)
}

/// `copilot_summary.changed` / `adoption_summary.changed`: the partner-level summary moved.
pub fn detect_summary(
    kind: EventKind,
    source: &str,
    changes: Vec<RecordChange>,
    baseline: bool,
    now: Timestamp,
) -> Vec<Event> {
    if baseline {
        return Vec::new();
    }
    changes
        .into_iter()
        .filter_map(|c| {
            let seq = u128::from(c.version);
            match (c.old, c.new) {
                (Some((oh, old)), Some((nh, new))) => Some(record_event(
                    kind,
                    source,
                    &c.entity_id,
                    &[oh, nh, seq],
                    new,
                    Some(old),
                    c.changes,
                    json!({}),
                    now,
                )),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: Value, new: Value) -> RecordChange {
        RecordChange::between("t1", Some((1, old)), Some((2, new)))
    }

    #[test]
    fn health_moves_are_ranked_and_thresholds_do_not_flap() {
        let judging = Judging {
            thresholds: BTreeMap::from([("utilizationPercent".to_string(), vec![50.0])]),
            ..Judging::default()
        };
        let now = Timestamp::UNIX_EPOCH;
        let (events, _) = detect(
            vec![change(
                json!({"adoptionStatus": "Healthy"}),
                json!({"adoptionStatus": "Failure to Thrive/Adopt"}),
            )],
            false,
            now,
            &judging,
            |_| None,
        );
        let health = events
            .iter()
            .find(|e| e.kind == EventKind::CopilotHealthChanged)
            .unwrap();
        assert_eq!(health.data["direction"], "worse");
        assert_eq!(health.data["to"], "Failure to Thrive/Adopt");

        // 49 → 50.5: not past 50 + 1 yet. 49 → 51: up. Remembered above, 51 → 49.5: still above.
        let u = |a: f64, b: f64, mem: Option<bool>| {
            let (events, sides) = detect(
                vec![change(
                    json!({"utilizationPercent": a}),
                    json!({"utilizationPercent": b}),
                )],
                false,
                now,
                &judging,
                |_| mem,
            );
            let crossed: Vec<String> = events
                .iter()
                .filter(|e| e.kind == EventKind::CopilotThresholdCrossed)
                .map(|e| e.data["direction"].as_str().unwrap().to_string())
                .collect();
            (crossed, sides[0].1.clone().unwrap().encode())
        };
        assert_eq!(u(49.0, 50.5, None), (vec![], b"below".to_vec()));
        assert_eq!(
            u(49.0, 51.0, None),
            (vec!["up".to_string()], b"above".to_vec())
        );
        assert_eq!(u(51.0, 49.5, Some(true)), (vec![], b"above".to_vec()));
        assert_eq!(
            u(49.5, 48.9, Some(true)),
            (vec!["down".to_string()], b"below".to_vec())
        );
    }
}
