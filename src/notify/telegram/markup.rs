//! Telegram's HTML parse mode built from text, within the message limit. Every character of
//! the text is escaped: customer text never becomes a tag or a link.

use crate::model::{Body, Message};
use crate::notify::text::{html_escape, truncate_chars};

/// Telegram's limit for one message.
pub const TELEGRAM_LIMIT: usize = 4096;

/// A Telegram message in HTML parse mode, within the 4096-character limit.
pub fn telegram_from_text(title: &str, rest: &str) -> String {
    let head = format!("<b>{}</b>\n", html_escape(title));
    let mut budget = TELEGRAM_LIMIT.saturating_sub(head.chars().count() + 40);
    loop {
        let (kept, cut) = truncate_chars(rest, budget);
        let mut body = html_escape(kept);
        if cut > 0 {
            body.push_str(&format!("\n… ({cut} more characters)"));
        }
        let message = format!("{head}{body}");
        if message.chars().count() <= TELEGRAM_LIMIT || budget == 0 {
            return message;
        }
        budget = budget * 9 / 10;
    }
}

/// A message in Telegram's HTML parse mode: its body if it is in that form, else built from
/// its text.
pub fn message_html(m: &Message) -> String {
    match &m.body {
        Body::Telegram { html } => html.clone(),
        Body::Legacy { body, .. } => body.clone(),
        other => telegram_from_text(&m.title, &other.plain()),
    }
}
