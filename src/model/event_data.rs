//! The `data` of the event kinds whose fields Rust code reads back (rules, the digest, the
//! command line). Events keep `data` as JSON — templates and CEL conditions see it as is — but
//! a detector writes these through the types below and a reader reads them the same way, so a
//! renamed field is a compile error on both sides, never a digest that silently empties.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Data that an event of one kind carries.
pub trait EventData: Serialize + DeserializeOwned {
    /// The JSON stored in [`super::Event::data`].
    fn to_data(&self) -> Value {
        serde_json::to_value(self).expect("event data serializes")
    }

    /// Reads it back from an event's `data`; `None` if it is not of this shape.
    fn from_data(data: &Value) -> Option<Self> {
        Self::deserialize(data).ok()
    }
}

/// `referral.status_changed`: the status and substatus before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChanged {
    /// `Status/Substatus` before, e.g. `New/Pending`.
    pub from: String,
    /// `Status/Substatus` after.
    pub to: String,
    pub from_status: String,
    pub from_substatus: String,
    pub to_status: String,
    pub to_substatus: String,
}

impl EventData for StatusChanged {}

/// `referral.closed`: how it ended (the substatus it closed with: Won, Lost, Declined, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    pub outcome: String,
}

impl EventData for Closed {}

/// `referral.expiring`: the deadline, the time left and the reminder threshold crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expiring {
    pub deadline: String,
    pub hours_left: i64,
    /// The threshold as rules write it (`7d`).
    pub threshold: String,
    /// The same threshold in seconds, matched against a rule's `before`.
    pub threshold_secs: u64,
}

impl EventData for Expiring {}

/// A value before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromTo<T> {
    pub from: T,
    pub to: T,
}

/// Active licenses before and after, and the difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLicenses {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub delta: Option<i64>,
}

/// `license.usage_changed`: a new processing day with its license counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageChanged {
    pub processed_date_time: Option<String>,
    pub previous_processed_date_time: Option<String>,
    pub licenses_active: ActiveLicenses,
    pub licenses_qualified: FromTo<Option<i64>>,
}

impl EventData for UsageChanged {}
