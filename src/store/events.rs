//! The event log: every event in the order it was detected, and an index by event id (an
//! event already in the log is never stored or announced twice).

use jiff::Timestamp;

use super::{Store, StoreError};
use crate::model::{Change, Doc, Event, EventKind};

/// How far out of detection order the log may be (events of one commit share a time; a
/// clock step backwards is tolerated this far) when it is read from the end.
pub const EVENT_ORDER_SLACK: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

impl Store {
    /// Whether an event with this id is in the log.
    pub fn has_event(&self, id: &str) -> Result<bool, StoreError> {
        let t = self.t()?;
        Ok(t.event_ids.contains_key(id.as_bytes())?)
    }

    /// One event by id.
    pub fn event(&self, id: &str) -> Result<Option<Event>, StoreError> {
        let t = self.t()?;
        let Some(seq) = t.event_ids.get(id.as_bytes())? else {
            return Ok(None);
        };
        match t.events.get(seq)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(decode_event(&bytes)?)),
        }
    }

    /// Every event in the log, in the order they were stored.
    pub fn events(&self) -> Result<Vec<Event>, StoreError> {
        let t = self.t()?;
        t.events.iter().map(|item| decode_event(&item?.1)).collect()
    }

    /// The events detected at or after `since`, in the order they were stored. The log is
    /// read from its end and stops at the first event more than [`EVENT_ORDER_SLACK`] older
    /// than `since`: events are stored in the order they are detected, so a week's digest
    /// does not read a year of history.
    pub fn events_since(&self, since: Timestamp) -> Result<Vec<Event>, StoreError> {
        let t = self.t()?;
        let stop = since - EVENT_ORDER_SLACK;
        let mut out = Vec::new();
        for item in t.events.iter().rev() {
            let event = decode_event(&item?.1)?;
            if event.detected_at < stop {
                break;
            }
            if event.detected_at >= since {
                out.push(event);
            }
        }
        out.reverse();
        Ok(out)
    }
}

/// An event as the log keeps it: its JSON, [packed](super::records::pack) (an event carries
/// two whole records). A record or previous version still held as its text ([`Doc`]) is
/// written as that text, not parsed to be written again.
pub(super) fn encode_event(event: &Event) -> Vec<u8> {
    let previous = event.previous.as_ref();
    let json = match (event.record.text(), previous.and_then(Doc::text)) {
        (None, None) => serde_json::to_vec(event).expect("events serialize"),
        _ => with_texts(event),
    };
    super::records::pack(&json)
}

/// The JSON of `event`, its `record` and `previous` written as their texts where they have
/// them.
fn with_texts(event: &Event) -> Vec<u8> {
    /// Every field of [`Event`] but the two documents, as its derived `Serialize` writes them.
    #[derive(serde::Serialize)]
    struct Rest<'a> {
        id: &'a str,
        kind: &'a EventKind,
        source: &'a str,
        entity_id: &'a str,
        detected_at: &'a Timestamp,
        changes: &'a [Change],
        data: &'a serde_json::Value,
    }
    let Event {
        id,
        kind,
        source,
        entity_id,
        detected_at,
        record,
        previous,
        changes,
        data,
    } = event;
    let rest = Rest {
        id,
        kind,
        source,
        entity_id,
        detected_at,
        changes,
        data,
    };
    let mut json = serde_json::to_vec(&rest).expect("events serialize");
    debug_assert_eq!(json.last(), Some(&b'}'));
    json.pop();
    let write = |json: &mut Vec<u8>, doc: &Doc| match doc.text() {
        Some(text) => json.extend_from_slice(text),
        None => serde_json::to_writer(json, doc.value()).expect("events serialize"),
    };
    json.extend_from_slice(b",\"record\":");
    write(&mut json, record);
    json.extend_from_slice(b",\"previous\":");
    match previous {
        Some(doc) => write(&mut json, doc),
        None => json.extend_from_slice(b"null"),
    }
    json.push(b'}');
    json
}

/// An event of the log: packed, or its JSON as logs before packing kept it.
fn decode_event(bytes: &sled::IVec) -> Result<Event, StoreError> {
    let json = super::records::unpack("event", bytes)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
        what: "event",
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documents_kept_as_text_are_logged_as_that_text() {
        let old = br#"{"id": "r1", "status": "Active", "details": {"dealValue": 100}}"#;
        let new = br#"{"id":"r1","status":"Active","details":{"dealValue":200}}"#;
        let parsed =
            |text: &[u8]| Doc::from(serde_json::from_slice::<serde_json::Value>(text).unwrap());
        let cases = [
            (Doc::from_text(&new[..]), Some(Doc::from_text(&old[..]))),
            (Doc::from_text(&new[..]), None),
            (parsed(new), Some(Doc::from_text(&old[..]))),
            (Doc::from_text(&new[..]), Some(parsed(old))),
        ];
        for (record, previous) in cases {
            let event = Event {
                id: "e1".into(),
                kind: EventKind::ReferralChanged,
                source: "referrals".into(),
                entity_id: "r1".into(),
                detected_at: "2026-12-04T05:00:00Z".parse().unwrap(),
                record,
                previous,
                changes: vec![Change {
                    path: "/details/dealValue".into(),
                    old: json!(100),
                    new: json!(200),
                }],
                data: json!({"x": 1}),
            };
            let texts: Vec<&[u8]> = [Some(&event.record), event.previous.as_ref()]
                .into_iter()
                .flatten()
                .filter_map(Doc::text)
                .collect();
            let encoded = encode_event(&event);
            for doc in [Some(&event.record), event.previous.as_ref()]
                .into_iter()
                .flatten()
            {
                assert!(
                    !doc.is_parsed() || doc.text().is_none(),
                    "written without being parsed"
                );
            }
            let json =
                super::super::records::unpack("event", &sled::IVec::from(encoded.clone())).unwrap();
            // Every field, as the derived serialization writes the event: none left out.
            assert_eq!(
                serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
                serde_json::to_value(&event).unwrap()
            );
            for text in texts {
                assert!(
                    json.windows(text.len()).any(|w| w == text),
                    "the text as it is"
                );
            }
            let back = decode_event(&sled::IVec::from(encoded)).unwrap();
            assert_eq!(back, event);
        }
    }
}
