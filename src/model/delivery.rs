//! [`Delivery`]: one message for one channel, as the outbox keeps it. A delivery is written
//! before it is sent and marked after, so a crash repeats at most the one in flight.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::EventKind;

/// A rendered message, ready for a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// One line that says what happened (email subject, card title, file name hint).
    pub title: String,
    /// The whole message in the channel's format (text, HTML, Telegram HTML, card JSON).
    pub body: String,
    /// The plain-text alternative, where the format has one (email).
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Sent,
    Dead,
}

/// One message for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Assigned by the store when the delivery is written; shown by `partnerwatch outbox`.
    pub id: u64,
    pub event_id: String,
    pub kind: EventKind,
    pub rule: String,
    pub channel: String,
    pub message: Message,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created_at: Timestamp,
    pub next_attempt_at: Timestamp,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
    /// Deliveries with the same group key (rule and channel, for a rule with `group`) wait
    /// together and go out as one message.
    #[serde(default)]
    pub group: Option<String>,
}
