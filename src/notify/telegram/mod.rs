//! The `telegram` channel: a bot posts to a chat (a group, channel or user) in HTML parse mode,
//! through teloxide. `api_url` points it at another Bot API server (tests, a local Bot API
//! server). Telegram's own 429 carries `retry_after`, which the outbox honours. The bot token
//! is part of every request URL: it is redacted from every error.

use teloxide::payloads::SendMessageSetters;
use teloxide::requests::Requester;
use teloxide::types::{ChatId, ParseMode, Recipient};
use teloxide::{ApiError, Bot, RequestError};

pub mod markup;

use super::SendOutcome;
use crate::config::{ConfigError, Secret};
use crate::model::Delivery;

#[derive(Debug)]
pub struct Telegram {
    bot: Bot,
    chat: Recipient,
    token: Secret,
}

impl Telegram {
    pub fn new(
        name: &str,
        token: Secret,
        chat_id: &str,
        api_url: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let chat = match chat_id.trim() {
            id if id.starts_with('@') => Recipient::ChannelUsername(id.to_string()),
            id => Recipient::Id(ChatId(id.parse().map_err(|_| {
                ConfigError::Invalid(format!(
                    "channel {name:?}: chat_id {id:?} is neither a number (e.g. -1001234567890) nor a @channelname"
                ))
            })?)),
        };
        let mut bot = Bot::new(token.expose());
        if let Some(url) = api_url {
            let url = reqwest::Url::parse(url).map_err(|e| {
                ConfigError::Invalid(format!("channel {name:?}: api_url is not a URL ({e})"))
            })?;
            bot = bot.set_api_url(url);
        }
        Ok(Self { bot, chat, token })
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let result = self
            .bot
            .send_message(self.chat.clone(), markup::message_html(&d.message))
            .parse_mode(ParseMode::Html)
            .await;
        match result {
            Ok(message) => SendOutcome::Delivered(format!("message {}", message.id)),
            Err(e) => {
                let error = self.token.redact(&e.to_string());
                match e {
                    RequestError::RetryAfter(secs) => SendOutcome::Retry {
                        after: Some(secs.duration()),
                        error,
                    },
                    RequestError::Network(_)
                    | RequestError::Io(_)
                    | RequestError::InvalidJson { .. } => SendOutcome::Retry { after: None, error },
                    RequestError::Api(ApiError::Unknown(ref text))
                        if text.contains("Internal Server Error")
                            || text.contains("Bad Gateway") =>
                    {
                        SendOutcome::Retry { after: None, error }
                    }
                    RequestError::Api(_) | RequestError::MigrateToChatId(_) => {
                        SendOutcome::Failed(error)
                    }
                }
            }
        }
    }
}
