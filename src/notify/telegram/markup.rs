//! Telegram's HTML parse mode built from text, within the message limit. Every character of
//! the text is escaped: customer text never becomes a tag or a link.

use crate::model::{Body, Message};
use crate::notify::text::{html_escape, truncate_chars};

/// Telegram's limit for one message: 4096 characters of the text it shows, counted once
/// the tags are parsed and the entities decoded, in UTF-16 code units (an emoji is two).
pub const TELEGRAM_LIMIT: usize = 4096;

/// The length Telegram holds against [`TELEGRAM_LIMIT`]: the HTML's text without its tags,
/// entities decoded, in UTF-16 code units.
pub fn telegram_length(html: &str) -> usize {
    let mut units = 0;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    units += 1;
                    rest = &rest[1..];
                }
            },
            '&' => match rest.find(';').filter(|&end| end <= 10) {
                // One character for an entity (the ones partnerwatch writes are all in the
                // Basic Multilingual Plane, one unit each).
                Some(end) => {
                    units += 1;
                    rest = &rest[end + 1..];
                }
                None => {
                    units += 1;
                    rest = &rest[1..];
                }
            },
            c => {
                units += c.len_utf16();
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    units
}

/// A Telegram message in HTML parse mode, within the limit as Telegram counts it.
pub fn telegram_from_text(title: &str, rest: &str) -> String {
    telegram_with_link(title, rest, None)
}

/// [`telegram_from_text`] ending in an "Open in Partner Center" link to `link`.
pub fn telegram_with_link(title: &str, rest: &str, link: Option<&str>) -> String {
    let head = format!("<b>{}</b>\n", html_escape(title));
    let tail = link.map_or(String::new(), |url| {
        format!(
            "\n\n<a href=\"{}\">{}</a>",
            html_escape(url),
            crate::notify::OPEN_IN_PARTNER_CENTER
        )
    });
    let mut budget = rest.chars().count();
    loop {
        let (kept, cut) = truncate_chars(rest, budget);
        let mut body = html_escape(kept);
        if cut > 0 {
            body.push_str(&format!("\n… ({cut} more characters)"));
        }
        let message = format!("{head}{body}{tail}");
        if telegram_length(&message) <= TELEGRAM_LIMIT || budget == 0 {
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
