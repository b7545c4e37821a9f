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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// One line that says what happened (email subject, card title, file name hint).
    pub title: String,
    /// The whole message in the channel's form, built once when the delivery is planned.
    pub body: Body,
}

/// A message's body in the form its channel sends, stored as it is (a card is JSON in the
/// outbox, not a string inside JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "lowercase")]
pub enum Body {
    /// Plain text: console, inbox files, webhooks.
    Text { text: String },
    /// Email: HTML and its plain-text alternative.
    Html { html: String, text: String },
    /// Telegram's HTML parse mode.
    Telegram { html: String },
    /// A Microsoft Teams Adaptive Card.
    Teams { card: serde_json::Value },
    /// A body written by a partnerwatch from before bodies were typed (a delivery still
    /// pending in an older state folder): each channel sends it as that version did.
    Legacy {
        body: String,
        #[serde(default)]
        text: Option<String>,
    },
}

impl Body {
    /// The body as its far end gets it: the text, the HTML, or the card's JSON.
    pub fn raw(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Body::Text { text } => text.into(),
            Body::Html { html, .. } | Body::Telegram { html } => html.into(),
            Body::Teams { card } => card.to_string().into(),
            Body::Legacy { body, .. } => body.into(),
        }
    }

    /// The plain text of the body where it has one (text and email), else its raw form.
    pub fn plain(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Body::Text { text } | Body::Html { text, .. } => text.into(),
            Body::Legacy {
                text: Some(text), ..
            } => text.into(),
            _ => self.raw(),
        }
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Today's form, and the form of older state folders (`body` a string, the plain
        /// text beside it).
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Typed {
                title: String,
                body: Body,
            },
            Legacy {
                title: String,
                body: String,
                #[serde(default)]
                text: Option<String>,
            },
        }
        Ok(match Stored::deserialize(d)? {
            Stored::Typed { title, body } => Message { title, body },
            Stored::Legacy { title, body, text } => Message {
                title,
                body: Body::Legacy { body, text },
            },
        })
    }
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
    /// The deal value the message is about (a referral's), for the title of a group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Amount>,
    /// Buttons under the message, in rows (Telegram's inline keyboard): actions on the
    /// referral it is about, and its Partner Center link.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Vec<Button>>,
}

/// A button under a chat message: it either carries an opaque action id back to partnerwatch
/// (`callback`) or opens a link (`url`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// An amount of money in a currency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Amount {
    pub value: f64,
    pub currency: String,
}

impl Amount {
    /// A referral's deal value (`details.dealValue`, `details.currency`), if it has one.
    pub fn of_referral(record: &serde_json::Value) -> Option<Amount> {
        let details = record.get("details")?;
        Some(Amount {
            value: details.get("dealValue")?.as_f64()?,
            currency: details
                .get("currency")
                .and_then(|c| c.as_str())
                .unwrap_or_default()
                .to_string(),
        })
    }
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
            amount: None,
            buttons: Vec::new(),
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
