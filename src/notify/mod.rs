//! Delivery: the [`outbox`] that never loses or repeats a message, and the channels it sends
//! through. Each channel answers one question per message — delivered, worth retrying
//! (perhaps after a `Retry-After`), or failed for good — and never logs its secret URL or token.

pub mod console;
pub mod email;
pub mod group;
pub mod inbox;
pub mod outbox;
pub mod teams;
pub mod telegram;
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
    Teams(teams::Teams),
    Email(email::Email),
    Telegram(telegram::Telegram),
}

impl Channel {
    /// Builds the channel `name` from its configuration.
    pub fn build(
        name: &str,
        config: &ChannelConfig,
        http: &reqwest::Client,
        tokens: Option<&crate::auth::TokenProvider>,
    ) -> Result<Channel, ConfigError> {
        Ok(match config {
            ChannelConfig::Console {} => Channel::Console(console::Console),
            ChannelConfig::Inbox { dir } => Channel::Inbox(inbox::Inbox::new(dir.0.clone().into())),
            ChannelConfig::Webhook { url } => {
                teams::check_url(name, "url", url)?;
                Channel::Webhook(webhook::Webhook::new(url.clone(), http.clone()))
            }
            ChannelConfig::Teams { webhook_url } => {
                Channel::Teams(teams::Teams::new(name, webhook_url.clone(), http.clone())?)
            }
            ChannelConfig::Email {
                smtp_url,
                from,
                to,
                oauth_user,
            } => {
                let to: Vec<String> = to.iter().map(|t| t.0.clone()).collect();
                let oauth = oauth_user.as_ref().map(|u| (u.0.clone(), tokens.cloned()));
                Channel::Email(email::Email::new(name, smtp_url.clone(), from, &to, oauth)?)
            }
            ChannelConfig::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => Channel::Telegram(telegram::Telegram::new(
                name,
                bot_token.clone(),
                chat_id,
                api_url.as_deref(),
            )?),
        })
    }

    /// The format this channel's messages are in.
    pub fn format(&self) -> Format {
        match self {
            Channel::Console(_) | Channel::Inbox(_) | Channel::Webhook(_) => Format::Text,
            Channel::Email(_) => Format::Html,
            Channel::Telegram(_) => Format::Telegram,
            Channel::Teams(_) => Format::Teams,
        }
    }

    pub async fn send(&self, delivery: &Delivery, event: Option<&Event>) -> SendOutcome {
        match self {
            Channel::Console(c) => c.send(delivery),
            Channel::Inbox(c) => c.send(delivery).await,
            Channel::Webhook(c) => c.send(delivery, event).await,
            Channel::Teams(c) => c.send(delivery).await,
            Channel::Email(c) => c.send(delivery).await,
            Channel::Telegram(c) => c.send(delivery).await,
        }
    }
}

/// The format a channel's messages are rendered in.
pub fn format_for(config: &ChannelConfig) -> Format {
    match config {
        ChannelConfig::Console {} | ChannelConfig::Inbox { .. } | ChannelConfig::Webhook { .. } => {
            Format::Text
        }
        ChannelConfig::Email { .. } => Format::Html,
        ChannelConfig::Telegram { .. } => Format::Telegram,
        ChannelConfig::Teams { .. } => Format::Teams,
    }
}

/// Builds every configured channel.
pub fn build_all(
    configs: &BTreeMap<String, ChannelConfig>,
    http: &reqwest::Client,
    tokens: Option<&crate::auth::TokenProvider>,
) -> Result<BTreeMap<String, Channel>, ConfigError> {
    configs
        .iter()
        .map(|(name, cfg)| Channel::build(name, cfg, http, tokens).map(|c| (name.clone(), c)))
        .collect()
}
