//! Events of the Referrals API dataset from one sweep's record changes: `referral.new`,
//! `.changed`, `.removed`, and the lifecycle moves inside a change — `.status_changed`,
//! `.closed` (with the outcome), `.expired` (the API's own Expired substatus) and
//! `.registration_changed`. The time-based events live in [`super::expiry`].

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::expiry;
use super::RecordChange;
use crate::model::event::event_id;
use crate::model::referral::{ReferralStatus, ReferralSubstatus};
use crate::model::{Event, EventKind};

pub const SOURCE: &str = "referrals";

fn text<'a>(r: &'a Value, keys: &[&str]) -> Option<&'a str> {
    let obj = r.as_object()?;
    keys.iter().find_map(|k| {
        obj.get(*k)
            .or_else(|| {
                obj.iter()
                    .find(|(key, _)| key.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_str)
    })
}

fn status(r: &Value) -> (String, String) {
    (
        text(r, &["status"]).unwrap_or("").to_string(),
        text(r, &["substatus", "subStatus"])
            .unwrap_or("")
            .to_string(),
    )
}

fn registration(r: &Value) -> String {
    text(r, &["registrationStatus"])
        .unwrap_or("None")
        .to_string()
}

/// Turns the record changes of one complete sweep into events. On a baseline sweep nothing
/// is announced: the records are only remembered.
pub fn detect(changes: &[RecordChange], baseline: bool, now: Timestamp) -> Vec<Event> {
    if baseline {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in changes {
        let event = |kind: EventKind,
                     hashes: &[u128],
                     record: &Value,
                     previous: Option<&Value>,
                     data: Value| {
            let hash_bytes: Vec<[u8; 16]> = hashes.iter().map(|h| h.to_le_bytes()).collect();
            let mut parts: Vec<&[u8]> = vec![
                kind.as_str().as_bytes(),
                SOURCE.as_bytes(),
                c.entity_id.as_bytes(),
            ];
            parts.extend(hash_bytes.iter().map(|h| h.as_slice()));
            Event {
                id: event_id(&parts),
                kind,
                source: SOURCE.to_string(),
                entity_id: c.entity_id.clone(),
                detected_at: now,
                record: record.clone(),
                previous: previous.cloned(),
                changes: if kind == EventKind::ReferralChanged {
                    c.changes.clone()
                } else {
                    Vec::new()
                },
                data,
            }
        };
        let empty = || Value::Object(Map::new());
        match (&c.old, &c.new) {
            (None, Some((h, new))) => {
                out.push(event(EventKind::ReferralNew, &[*h], new, None, empty()))
            }
            (Some((h, old)), None) => out.push(event(
                EventKind::ReferralRemoved,
                &[*h],
                old,
                None,
                json!({ "reason": "absent from a complete sweep" }),
            )),
            (Some((oh, old)), Some((nh, new))) => {
                let hashes = [*oh, *nh];
                out.push(event(
                    EventKind::ReferralChanged,
                    &hashes,
                    new,
                    Some(old),
                    empty(),
                ));
                let (from, to) = (status(old), status(new));
                if from != to {
                    out.push(event(
                        EventKind::ReferralStatusChanged,
                        &hashes,
                        new,
                        Some(old),
                        json!({
                            "from": format!("{}/{}", from.0, from.1),
                            "to": format!("{}/{}", to.0, to.1),
                            "from_status": from.0, "from_substatus": from.1,
                            "to_status": to.0, "to_substatus": to.1,
                        }),
                    ));
                    let closed =
                        |s: &str| s.parse::<ReferralStatus>().ok() == Some(ReferralStatus::Closed);
                    if closed(&to.0) && !closed(&from.0) {
                        out.push(event(
                            EventKind::ReferralClosed,
                            &hashes,
                            new,
                            Some(old),
                            json!({ "outcome": to.1 }),
                        ));
                    }
                    let expired = |s: &str| {
                        s.parse::<ReferralSubstatus>().ok() == Some(ReferralSubstatus::Expired)
                    };
                    if expired(&to.1) && !expired(&from.1) {
                        if let Some(deadline) = expiry::any_deadline(old) {
                            let mut e = expiry::expired_event(
                                &c.entity_id,
                                new.clone(),
                                deadline,
                                now,
                                "Partner Center archived it as Expired",
                            );
                            e.previous = Some(old.clone());
                            out.push(e);
                        }
                    }
                }
                let (rf, rt) = (registration(old), registration(new));
                if rf != rt {
                    out.push(event(
                        EventKind::ReferralRegistrationChanged,
                        &hashes,
                        new,
                        Some(old),
                        json!({ "from": rf, "to": rt }),
                    ));
                }
            }
            (None, None) => {}
        }
    }
    out
}
