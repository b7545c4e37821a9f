//! The event log: every event in the order it was detected, and an index by event id (an
//! event already in the log is never stored or announced twice).

use jiff::Timestamp;

use super::{Store, StoreError};
use crate::model::Event;

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
/// two whole records).
pub(super) fn encode_event(event: &Event) -> Vec<u8> {
    super::records::pack(&serde_json::to_vec(event).expect("events serialize"))
}

/// An event of the log: packed, or its JSON as logs before packing kept it.
fn decode_event(bytes: &sled::IVec) -> Result<Event, StoreError> {
    let json = super::records::unpack("event", bytes)?;
    serde_json::from_slice(&json).map_err(|e| StoreError::Corrupt {
        what: "event",
        detail: e.to_string(),
    })
}
