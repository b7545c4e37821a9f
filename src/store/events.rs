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
/// two whole records). A previous version still held as its stored text is written as that
/// text, not parsed to be written again.
pub(super) fn encode_event(event: &Event) -> Vec<u8> {
    let json = match event.previous.as_ref().and_then(Doc::text) {
        Some(text) => with_previous_text(event, text),
        None => serde_json::to_vec(event).expect("events serialize"),
    };
    super::records::pack(&json)
}

/// The JSON of `event`, its `previous` written as `text` (JSON, as [`Doc`] holds it).
fn with_previous_text(event: &Event, text: &[u8]) -> Vec<u8> {
    /// Every field of [`Event`] but `previous`, as its derived `Serialize` writes them.
    #[derive(serde::Serialize)]
    struct Rest<'a> {
        id: &'a str,
        kind: &'a EventKind,
        source: &'a str,
        entity_id: &'a str,
        detected_at: &'a Timestamp,
        record: &'a serde_json::Value,
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
        previous: _,
        changes,
        data,
    } = event;
    let rest = Rest {
        id,
        kind,
        source,
        entity_id,
        detected_at,
        record,
        changes,
        data,
    };
    let mut json = serde_json::to_vec(&rest).expect("events serialize");
    debug_assert_eq!(json.last(), Some(&b'}'));
    json.pop();
    json.extend_from_slice(b",\"previous\":");
    json.extend_from_slice(text);
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
    fn a_previous_version_kept_as_text_is_logged_as_that_text() {
        let text = br#"{"id": "r1", "status": "Active", "details": {"dealValue": 100}}"#;
        let event = Event {
            id: "e1".into(),
            kind: EventKind::ReferralChanged,
            source: "referrals".into(),
            entity_id: "r1".into(),
            detected_at: "2026-12-04T05:00:00Z".parse().unwrap(),
            record: json!({"id": "r1", "status": "Active", "details": {"dealValue": 200}}),
            previous: Some(Doc::from_text(&text[..])),
            changes: vec![Change {
                path: "/details/dealValue".into(),
                old: json!(100),
                new: json!(200),
            }],
            data: json!({"x": 1}),
        };
        let encoded = encode_event(&event);
        assert!(
            !event.previous.as_ref().unwrap().is_parsed(),
            "written without being parsed"
        );
        let json =
            super::super::records::unpack("event", &sled::IVec::from(encoded.clone())).unwrap();
        // Every field, as the derived serialization writes the event: none left out.
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&json).unwrap(),
            serde_json::to_value(&event).unwrap()
        );
        assert!(
            json.windows(text.len()).any(|w| w == text),
            "the stored text, as it is"
        );
        let back = decode_event(&sled::IVec::from(encoded)).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.previous.unwrap()["details"]["dealValue"], 100);
    }
}
