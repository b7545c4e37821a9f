//! [`Delivery`]: one message for one channel, as the outbox keeps it. A delivery is written
//! before it is sent and marked after, so a crash repeats at most the one in flight.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::EventKind;

/// The output format a channel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Plain text: console, inbox files, webhooks.
    Text,
    /// Email: HTML with a plain-text alternative.
    Html,
    /// Telegram's HTML parse mode.
    Telegram,
    /// A Microsoft Teams Adaptive Card (JSON).
    Teams,
}

impl Format {
    pub const ALL: [Format; 4] = [Format::Text, Format::Html, Format::Telegram, Format::Teams];

    pub fn suffix(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Html => "html",
            Format::Telegram => "telegram",
            Format::Teams => "teams",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.suffix() == s)
    }
}

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
    /// The event's kind; `None` for a digest (which is about many events).
    pub kind: Option<EventKind>,
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
    /// Pictures the message's HTML shows inline, by Content-ID (the digest's charts).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<InlineImage>,
}

impl Delivery {
    /// A new delivery, due at `now`; the store assigns its id when it is written.
    pub fn pending(
        event_id: &str,
        kind: Option<EventKind>,
        rule: &str,
        channel: &str,
        message: Message,
        now: Timestamp,
    ) -> Delivery {
        Delivery {
            id: 0,
            event_id: event_id.to_string(),
            kind,
            rule: rule.to_string(),
            channel: channel.to_string(),
            message,
            status: DeliveryStatus::Pending,
            attempts: 0,
            created_at: now,
            next_attempt_at: now,
            last_error: None,
            sent_at: None,
            group: None,
            images: Vec::new(),
        }
    }

    /// What the delivery is about, for listings and file names: the event kind, or `digest`.
    pub fn what(&self) -> &str {
        self.kind.map_or("digest", EventKind::as_str)
    }
}

/// A picture sent inside an email (multipart/related) and referred to as `cid:CONTENT_ID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InlineImage {
    pub content_id: String,
    pub content_type: String,
    /// The bytes, base64 in the outbox.
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}
