//! Events of the MCI partner performance rows (`mci.new`, `.changed`, `.milestone_changed`,
//! `.stage_changed`) and of the ABSS partner referrals (`partner_referral.new`, `.changed`,
//! `.status_changed`).

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::record_event;
use super::RecordChange;
use crate::model::{Event, EventKind};

/// A text field, or the `name` of an `{id, name}` object (how ABSS spells statuses).
fn label(r: &Value, field: &str) -> Option<String> {
    match crate::model::field(r, field)? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// The kinds of one dataset's events.
struct Kinds {
    new: EventKind,
    changed: EventKind,
    /// (field, kind) pairs: a move of the field raises the kind with `from`/`to`.
    moves: &'static [(&'static str, EventKind)],
}

const MCI: Kinds = Kinds {
    new: EventKind::MciNew,
    changed: EventKind::MciChanged,
    moves: &[
        ("milestone", EventKind::MciMilestoneChanged),
        ("stage", EventKind::MciStageChanged),
    ],
};

const PARTNER_REFERRALS: Kinds = Kinds {
    new: EventKind::PartnerReferralNew,
    changed: EventKind::PartnerReferralChanged,
    moves: &[
        ("referralStatus", EventKind::PartnerReferralStatusChanged),
        ("acceptance", EventKind::PartnerReferralStatusChanged),
    ],
};

fn detect(
    kinds: &Kinds,
    source: &str,
    changes: Vec<RecordChange>,
    baseline: bool,
    now: Timestamp,
) -> Vec<Event> {
    let mut out = Vec::new();
    if baseline {
        return out;
    }
    for c in changes {
        // The occurrence of this change is part of its events' ids (guarantee 10).
        let seq = u128::from(c.version);
        let id = c.entity_id;
        match (c.old, c.new) {
            (None, Some((h, new))) => out.push(record_event(
                kinds.new,
                source,
                &id,
                &[h, seq],
                new,
                None,
                Vec::new(),
                json!({}),
                now,
            )),
            (Some((oh, old)), Some((nh, new))) => {
                let hashes = [oh, nh, seq];
                let mut follow = Vec::new();
                for (field, kind) in kinds.moves {
                    let (from, to) = (label(&old, field), label(&new, field));
                    if from != to && !follow.iter().any(|e: &Event| e.kind == *kind) {
                        let data = json!({ "field": field, "from": from, "to": to });
                        follow.push(record_event(
                            *kind,
                            source,
                            &id,
                            &hashes,
                            new.clone(),
                            Some(old.clone()),
                            Vec::new(),
                            data,
                            now,
                        ));
                    }
                }
                out.push(record_event(
                    kinds.changed,
                    source,
                    &id,
                    &hashes,
                    new,
                    Some(old),
                    c.changes,
                    Value::Object(Map::new()),
                    now,
                ));
                out.extend(follow);
            }
            // These datasets have no `removed` kind: a row that leaves the listing is remembered as gone.
            _ => {}
        }
    }
    out
}

/// MCI partner performance events.
pub fn detect_mci(changes: Vec<RecordChange>, baseline: bool, now: Timestamp) -> Vec<Event> {
    detect(&MCI, "mci_performance", changes, baseline, now)
}

/// ABSS partner referral events.
pub fn detect_partner_referrals(
    changes: Vec<RecordChange>,
    baseline: bool,
    now: Timestamp,
) -> Vec<Event> {
    detect(
        &PARTNER_REFERRALS,
        "partner_referrals",
        changes,
        baseline,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: Value, new: Value) -> RecordChange {
        RecordChange::between("x", Some((1, old)), Some((2, new)))
    }

    #[test]
    fn moves_are_named_with_from_and_to() {
        let now = Timestamp::UNIX_EPOCH;
        let e = detect_mci(
            vec![change(
                json!({"milestone": "POE", "stage": "Envision"}),
                json!({"milestone": "Completed", "stage": "Envision"}),
            )],
            false,
            now,
        );
        assert_eq!(
            e.iter().map(|e| e.kind).collect::<Vec<_>>(),
            vec![EventKind::MciChanged, EventKind::MciMilestoneChanged]
        );
        assert_eq!(e[1].data["to"], "Completed");
        let e = detect_partner_referrals(
            vec![change(
                json!({"referralStatus": {"id": "1", "name": "Open"}}),
                json!({"referralStatus": {"id": "2", "name": "Accepted"}}),
            )],
            false,
            now,
        );
        assert_eq!(e[1].kind, EventKind::PartnerReferralStatusChanged);
        assert_eq!(
            (e[1].data["from"].as_str(), e[1].data["to"].as_str()),
            (Some("Open"), Some("Accepted"))
        );
        assert!(
            detect_mci(vec![change(json!({"a": 1}), json!({"a": 2}))], true, now).is_empty(),
            "baseline"
        );
    }
}
