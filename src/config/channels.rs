//! `channels:` and `delivery:` — where messages go, in which format, and how hard the outbox
//! tries.

use serde::Deserialize;

use super::{EnvString, Every, Secret};

/// One entry of `channels:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Prints each message to standard output.
    Console {},
    /// Writes each message as a file into a folder.
    Inbox { dir: EnvString },
    /// POSTs the event and the rendered message as JSON.
    Webhook { url: Secret },
    /// A Microsoft Teams Workflows webhook.
    Teams { webhook_url: Secret },
    /// SMTP email.
    Email {
        smtp_url: Secret,
        from: EnvString,
        to: Vec<EnvString>,
        /// Sign in to SMTP with XOAUTH2 as this mailbox, with a token from `auth` (Exchange
        /// Online is retiring password SMTP).
        #[serde(default)]
        oauth_user: Option<EnvString>,
    },
    /// A Telegram chat through a bot.
    Telegram {
        bot_token: Secret,
        #[serde(deserialize_with = "super::env::string_or_number")]
        chat_id: EnvString,
        #[serde(default)]
        api_url: Option<EnvString>,
    },
}

impl ChannelConfig {
    /// The format this channel's messages are rendered in: the one place that decides it.
    pub fn format(&self) -> crate::model::Format {
        use crate::model::Format;
        match self {
            ChannelConfig::Console {}
            | ChannelConfig::Inbox { .. }
            | ChannelConfig::Webhook { .. } => Format::Text,
            ChannelConfig::Email { .. } => Format::Html,
            ChannelConfig::Telegram { .. } => Format::Telegram,
            ChannelConfig::Teams { .. } => Format::Teams,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::Console {} => "console",
            ChannelConfig::Inbox { .. } => "inbox",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Teams { .. } => "teams",
            ChannelConfig::Email { .. } => "email",
            ChannelConfig::Telegram { .. } => "telegram",
        }
    }
}

/// `delivery:` — how hard the outbox tries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The first retry waits this long; each further one twice as long.
    #[serde(default = "default_backoff")]
    pub backoff: Every,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            backoff: default_backoff(),
        }
    }
}

fn default_attempts() -> u32 {
    8
}

fn default_backoff() -> Every {
    Every(std::time::Duration::from_secs(30))
}
