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

    /// The bot, for the listener of `actions.telegram` (the same token and API address).
    pub fn bot(&self) -> &Bot {
        &self.bot
    }

    /// The chat this channel posts to.
    pub fn chat(&self) -> &Recipient {
        &self.chat
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let mut request = self
            .bot
            .send_message(self.chat.clone(), markup::message_html(&d.message))
            .parse_mode(ParseMode::Html);
        if !d.buttons.is_empty() {
            request = request.reply_markup(keyboard(&d.buttons));
        }
        let result = request.await;
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

/// Telegram's inline keyboard for `rows` of buttons.
pub fn keyboard(rows: &[Vec<crate::model::Button>]) -> teloxide::types::InlineKeyboardMarkup {
    use teloxide::types::InlineKeyboardButton;
    let rows: Vec<Vec<InlineKeyboardButton>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .filter_map(|b| match (&b.callback, &b.url) {
                    (Some(data), _) => Some(InlineKeyboardButton::callback(&b.text, data)),
                    (None, Some(url)) => reqwest::Url::parse(url)
                        .ok()
                        .map(|u| InlineKeyboardButton::url(&b.text, u)),
                    (None, None) => None,
                })
                .collect()
        })
        .filter(|row: &Vec<InlineKeyboardButton>| !row.is_empty())
        .collect();
    teloxide::types::InlineKeyboardMarkup::new(rows)
}
