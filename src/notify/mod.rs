//! Delivery: the [`outbox`] that never loses or repeats a message, and the channels it sends
//! through. Each channel answers one question per message — delivered, worth retrying
//! (perhaps after a `Retry-After`), or failed for good — and never logs its secret URL or token.

pub mod console;
pub mod inbox;
pub mod outbox;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{ChannelConfig, ConfigError};
use crate::model::{Delivery, Event};
use crate::templates::Format;

/// What a channel says about one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// The far end took it; the text says what it answered.
    Delivered(String),
    /// Worth trying again, after the far end's `Retry-After` if it gave one.
    Retry {
        after: Option<Duration>,
        error: String,
    },
    /// Trying again will not help (a 4xx other than 429, a bad address).
    Failed(String),
}

/// A configured channel, ready to send.
#[derive(Debug)]
pub enum Channel {
    Console(console::Console),
    Inbox(inbox::Inbox),
    Webhook(webhook::Webhook),
}

impl Channel {
    /// Builds the channel `name` from its configuration.
    pub fn build(
        name: &str,
        config: &ChannelConfig,
        http: &reqwest::Client,
    ) -> Result<Channel, ConfigError> {
        Ok(match config {
            ChannelConfig::Console {} => Channel::Console(console::Console),
            ChannelConfig::Inbox { dir } => Channel::Inbox(inbox::Inbox::new(dir.0.clone().into())),
            ChannelConfig::Webhook { url } => Channel::Webhook(webhook::Webhook::new(url.clone(), http.clone())),
            other => {
                return Err(ConfigError::Invalid(format!(
                    "channel {name:?}: type {} is not available in this version of partnerwatch yet (available: console, inbox, webhook)",
                    other.type_name()
                )))
            }
        })
    }

    pub async fn send(&self, delivery: &Delivery, event: Option<&Event>) -> SendOutcome {
        match self {
            Channel::Console(c) => c.send(delivery),
            Channel::Inbox(c) => c.send(delivery).await,
            Channel::Webhook(c) => c.send(delivery, event).await,
        }
    }
}

/// The format a channel's messages are rendered in.
pub fn format_for(_config: &ChannelConfig) -> Format {
    Format::Text
}

/// Builds every configured channel.
pub fn build_all(
    configs: &BTreeMap<String, ChannelConfig>,
    http: &reqwest::Client,
) -> Result<BTreeMap<String, Channel>, ConfigError> {
    configs
        .iter()
        .map(|(name, cfg)| Channel::build(name, cfg, http).map(|c| (name.clone(), c)))
        .collect()
}
