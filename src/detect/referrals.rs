//! Events of the Referrals API dataset: `referral.new`, `.changed`, `.removed`.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::RecordChange;
use crate::model::event::event_id;
use crate::model::{Event, EventKind};

pub const SOURCE: &str = "referrals";

/// Turns the record changes of one complete sweep into events. On a baseline sweep nothing
/// is announced: the records are only remembered.
pub fn detect(changes: &[RecordChange], baseline: bool, now: Timestamp) -> Vec<Event> {
    if baseline {
        return Vec::new();
    }
    changes
        .iter()
        .map(|c| {
            let (kind, id_parts, record, previous, data) = match (&c.old, &c.new) {
                (None, Some((h, new))) => (
                    EventKind::ReferralNew,
                    vec![h.to_le_bytes()],
                    new.clone(),
                    None,
                    Value::Object(Default::default()),
                ),
                (Some((oh, old)), Some((nh, new))) => (
                    EventKind::ReferralChanged,
                    vec![oh.to_le_bytes(), nh.to_le_bytes()],
                    new.clone(),
                    Some(old.clone()),
                    Value::Object(Default::default()),
                ),
                (Some((oh, old)), None) => (
                    EventKind::ReferralRemoved,
                    vec![oh.to_le_bytes()],
                    old.clone(),
                    None,
                    json!({ "reason": "absent from a complete sweep" }),
                ),
                (None, None) => unreachable!("a change has at least one side"),
            };
            let mut parts: Vec<&[u8]> = vec![
                kind.as_str().as_bytes(),
                SOURCE.as_bytes(),
                c.entity_id.as_bytes(),
            ];
            parts.extend(id_parts.iter().map(|p| p.as_slice()));
            Event {
                id: event_id(&parts),
                kind,
                source: SOURCE.to_string(),
                entity_id: c.entity_id.clone(),
                detected_at: now,
                record,
                previous,
                changes: c.changes.clone(),
                data,
            }
        })
        .collect()
}
