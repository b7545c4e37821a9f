//! Delivery: the [`outbox`] that never loses or repeats a message, and the channels it sends
//! through. Each channel answers one question per message — delivered, worth retrying
//! (perhaps after a `Retry-After`), or failed for good — and never logs its secret URL or token.

pub mod classify;
pub mod console;
pub mod email;
pub mod group;
pub mod inbox;
pub mod outbox;
pub mod teams;
pub mod telegram;
pub mod text;
pub mod webhook;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{ChannelConfig, ConfigError, Secret};
use crate::model::{Body, Delivery, Event, Format, Message};

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

impl SendOutcome {
    /// The outcome with every known secret and token scrubbed from what it quotes.
    fn redacted(self) -> SendOutcome {
        let clean = |s: String| crate::config::secret::redact(&s).into_owned();
        match self {
            SendOutcome::Delivered(s) => SendOutcome::Delivered(clean(s)),
            SendOutcome::Retry { after, error } => SendOutcome::Retry {
                after,
                error: clean(error),
            },
            SendOutcome::Failed(s) => SendOutcome::Failed(clean(s)),
        }
    }
}

/// A configured channel, ready to send, with the format its messages are rendered in.
#[derive(Debug)]
pub struct Channel {
    format: Format,
    sender: Sender,
}

/// What sends a channel's messages.
#[derive(Debug)]
enum Sender {
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
        let sender = match config {
            ChannelConfig::Console {} => Sender::Console(console::Console),
            ChannelConfig::Inbox { dir } => Sender::Inbox(inbox::Inbox::new(dir.0.clone().into())),
            ChannelConfig::Webhook { url } => {
                Sender::Webhook(webhook::Webhook::new(name, url.clone(), http.clone())?)
            }
            ChannelConfig::Teams { webhook_url } => {
                Sender::Teams(teams::Teams::new(name, webhook_url.clone(), http.clone())?)
            }
            ChannelConfig::Email {
                smtp_url,
                from,
                to,
                oauth_user,
            } => {
                let to: Vec<String> = to.iter().map(|t| t.0.clone()).collect();
                let oauth = oauth_user.as_ref().map(|u| (u.0.clone(), tokens.cloned()));
                Sender::Email(email::Email::new(name, smtp_url.clone(), from, &to, oauth)?)
            }
            ChannelConfig::Telegram {
                bot_token,
                chat_id,
                api_url,
            } => Sender::Telegram(telegram::Telegram::new(
                name,
                bot_token.clone(),
                chat_id,
                api_url.as_deref(),
            )?),
        };
        Ok(Channel {
            format: config.format(),
            sender,
        })
    }

    /// The Telegram channel behind this one, if it is one (its bot listens for presses).
    pub fn telegram(&self) -> Option<&telegram::Telegram> {
        match &self.sender {
            Sender::Telegram(t) => Some(t),
            _ => None,
        }
    }

    /// The format this channel's messages are in (decided by [`ChannelConfig::format`]).
    pub fn format(&self) -> Format {
        self.format
    }

    /// Sends one delivery. What the far end said passes through the redaction layer here,
    /// whatever the channel, before it is logged or stored.
    pub async fn send(&self, delivery: &Delivery, event: Option<&Event>) -> SendOutcome {
        self.send_raw(delivery, event).await.redacted()
    }

    async fn send_raw(&self, delivery: &Delivery, event: Option<&Event>) -> SendOutcome {
        match &self.sender {
            Sender::Console(c) => c.send(delivery),
            Sender::Inbox(c) => c.send(delivery).await,
            Sender::Webhook(c) => c.send(delivery, event).await,
            Sender::Teams(c) => c.send(delivery).await,
            Sender::Email(c) => c.send(delivery).await,
            Sender::Telegram(c) => c.send(delivery).await,
        }
    }
}

/// A message in `format` built from a title and the text under it: the one place that knows
/// each channel's markup when no template of its own is there. Customer text is escaped for
/// the format, never interpreted.
pub fn message_from_text(format: Format, title: &str, rest: &str) -> Message {
    message_with_link(format, title, rest, None)
}

/// What the Partner Center button or link of a message says.
pub const OPEN_IN_PARTNER_CENTER: &str = "Open in Partner Center";

/// [`message_from_text`], with a way to open `link` in every channel: a Teams card's
/// `Action.OpenUrl` button, a button-like link in email, a link in Telegram, the address on a
/// line of its own in plain text. The link is partnerwatch's own (`links.referral`), never
/// one found in customer text.
pub fn message_with_link(format: Format, title: &str, rest: &str, link: Option<&str>) -> Message {
    let title = text::fold_breaks(title);
    // Only a Teams card keeps a value's line breaks apart from the template's own lines
    // (facts are template lines); elsewhere they are line breaks again.
    let unmarked = text::unmark_breaks(rest);
    let text = || {
        let mut t = if rest.is_empty() {
            title.clone()
        } else {
            format!("{title}\n\n{unmarked}")
        };
        if let Some(url) = link {
            t.push_str(&format!("\n\n{OPEN_IN_PARTNER_CENTER}: {url}"));
        }
        t
    };
    let body = match format {
        Format::Text => Body::Text { text: text() },
        Format::Html => Body::Html {
            html: email::html::html_with_link(&title, rest, link),
            text: text(),
        },
        Format::Telegram => Body::Telegram {
            html: telegram::markup::telegram_with_link(&title, &unmarked, link),
        },
        Format::Teams => Body::Teams {
            card: teams::card::card_with_link(&title, rest, link),
        },
    };
    Message { title, body }
}

/// A webhook URL must be https; plain http is accepted only on this machine (tests, proxies).
pub fn check_webhook_url(name: &str, key: &str, url: &Secret) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url.expose())
        .map_err(|e| ConfigError::Invalid(format!("channel {name:?}: {key} is not a URL ({e})")))?;
    let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if local => Ok(()),
        other => Err(ConfigError::Invalid(format!(
            "channel {name:?}: {key} must be an https URL (it is {other}://…)"
        ))),
    }
}

/// Builds every configured channel.
pub fn build_all(
    config: &crate::config::Config,
    http: &reqwest::Client,
    tokens: Option<&crate::auth::TokenProvider>,
) -> Result<BTreeMap<String, Channel>, ConfigError> {
    config
        .channels
        .iter()
        .map(|(name, cfg)| {
            Channel::build(name, cfg, http, tokens)
                .map(|c| (name.clone(), c))
                .map_err(|e| config.error_at(&format!("channels.{name}"), e))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::email::html::html_from_text;
    use super::teams::card::{card_from_text, TEAMS_CARD_LIMIT};
    use super::telegram::markup::{telegram_from_text, TELEGRAM_LIMIT};

    #[test]
    fn hostile_text_stays_text_in_every_format() {
        let title = "O'Brien \"<b>\" & <script>alert(1)</script> 🎉";
        let rest = "line one\n\n**markdown** [x](http://e)\nline </b>";
        let html = html_from_text(title, rest);
        assert!(
            !html.contains("<script>") && html.contains("&lt;script&gt;") && html.contains("&amp;")
        );
        let tg = telegram_from_text(title, rest);
        assert!(
            tg.starts_with("<b>O&#39;Brien &quot;&lt;b&gt;&quot;"),
            "{tg}"
        );
        assert_eq!(tg.matches("<b>").count(), 1);
        assert_eq!(tg.matches("</b>").count(), 1);
        let card = card_from_text(title, rest);
        // Literal runs, not Markdown TextBlocks.
        assert_eq!(card["body"][0]["type"], "RichTextBlock");
        assert_eq!(card["body"][0]["inlines"][0]["text"], title);
        assert!(card["body"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["type"] != "TextBlock"));
        assert_eq!(card["version"], "1.4");
    }

    #[test]
    fn long_messages_respect_channel_limits() {
        use super::telegram::markup::telegram_length;
        // Telegram counts the text it shows: 3,000 escaped `<&>` are 9,000 characters shown
        // (cut), but 1,300 of them are 3,900 — they fit, though their HTML is 16,900 long.
        let tg = telegram_from_text("t", &"<&>".repeat(3000));
        assert!(
            telegram_length(&tg) <= TELEGRAM_LIMIT,
            "{}",
            telegram_length(&tg)
        );
        assert!(tg.contains("more characters"));
        let fits = telegram_from_text("t", &"<&>".repeat(1300));
        assert!(!fits.contains("more characters"), "cut although it fits");
        assert!(
            fits.len() > TELEGRAM_LIMIT,
            "its HTML is longer than the limit"
        );
        // …in UTF-16 units: 2,500 emoji are 5,000 units and must be cut.
        let emoji = telegram_from_text("t", &"🎉".repeat(2500));
        assert!(emoji.contains("more characters"));
        assert!(telegram_length(&emoji) <= TELEGRAM_LIMIT);
        assert_eq!(telegram_length("<b>a&amp;b</b>\n🎉"), 6);
        let card = card_from_text("t", &"x".repeat(100_000));
        assert!(card.to_string().len() <= TEAMS_CARD_LIMIT);
        let last = card["body"].as_array().unwrap().last().unwrap();
        assert!(last["inlines"][0]["text"]
            .as_str()
            .unwrap()
            .contains("more characters)"));
    }
}
