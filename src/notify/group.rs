//! Grouped messages (`group: 10m` on a rule): the deliveries of one rule and channel that
//! wait together are sent as one message. A group larger than the channel allows (Telegram's
//! 4096 characters, Teams' 28 KB) is split into as many messages as needed.

use serde_json::{json, Value};

use super::email::html::html_from_text;
use super::teams::card::{adaptive_card, title_block, TEAMS_CARD_LIMIT};
use super::telegram::markup::TELEGRAM_LIMIT;
use super::text::html_escape;
use crate::model::Format;
use crate::model::{Delivery, Message};

/// The separator between the messages of a group in text forms.
const SEPARATOR: &str = "\n\n――――――――――\n\n";

/// One message for the first `n` of `group` (at least one), and `n`.
pub fn combine(format: Format, group: &[Delivery]) -> (Message, usize) {
    assert!(!group.is_empty(), "a group has at least one delivery");
    let mut best = (single(format, &group[..1], group.len()), 1);
    for n in 2..=group.len() {
        let m = single(format, &group[..n], group.len());
        if !fits(format, &m) {
            break;
        }
        best = (m, n);
    }
    best
}

fn fits(format: Format, m: &Message) -> bool {
    match format {
        Format::Telegram => m.body.chars().count() <= TELEGRAM_LIMIT,
        Format::Teams => m.body.len() <= TEAMS_CARD_LIMIT,
        Format::Text | Format::Html => true,
    }
}

fn single(format: Format, part: &[Delivery], total: usize) -> Message {
    if part.len() == 1 && total == 1 {
        return part[0].message.clone();
    }
    let rule = &part[0].rule;
    let title = if part.len() == total {
        format!("{} updates (rule {rule})", part.len())
    } else {
        format!("{} of {total} updates (rule {rule})", part.len())
    };
    let texts: Vec<&str> = part
        .iter()
        .map(|d| d.message.text.as_deref().unwrap_or(&d.message.body))
        .collect();
    match format {
        Format::Text => Message {
            body: format!("{title}\n\n{}", texts.join(SEPARATOR)),
            title,
            text: None,
        },
        Format::Html => {
            let text = texts.join(SEPARATOR);
            Message {
                body: html_from_text(&title, &text),
                text: Some(format!("{title}\n\n{text}")),
                title,
            }
        }
        Format::Telegram => {
            let bodies: Vec<&str> = part.iter().map(|d| d.message.body.as_str()).collect();
            Message {
                body: format!("<b>{}</b>\n\n{}", html_escape(&title), bodies.join("\n\n")),
                title,
                text: None,
            }
        }
        Format::Teams => {
            let mut body = vec![title_block(&title)];
            for d in part {
                let card: Value = serde_json::from_str(&d.message.body).unwrap_or(Value::Null);
                let items = card.get("body").cloned().unwrap_or_else(
                    || json!([{ "type": "TextBlock", "text": d.message.title, "wrap": true }]),
                );
                body.push(json!({ "type": "Container", "separator": true, "items": items }));
            }
            let card = adaptive_card(body);
            Message {
                body: card.to_string(),
                title,
                text: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventKind;
    use crate::notify::teams::card::card_from_text;
    use crate::notify::telegram::markup::telegram_from_text;

    fn delivery(i: usize, body: String, text: Option<String>) -> Delivery {
        let message = Message {
            title: format!("t{i}"),
            body,
            text,
        };
        let at = jiff::Timestamp::UNIX_EPOCH;
        let kind = Some(EventKind::ReferralNew);
        Delivery {
            id: i as u64,
            group: Some("r\u{0}c".into()),
            ..Delivery::pending(&format!("e{i}"), kind, "r", "c", message, at)
        }
    }

    #[test]
    fn small_groups_are_one_message_large_ones_are_split_under_the_limits() {
        let texts: Vec<Delivery> = (0..3)
            .map(|i| delivery(i, format!("t{i}\nbody {i}"), None))
            .collect();
        let (m, n) = combine(Format::Text, &texts);
        assert_eq!(n, 3);
        assert!(
            m.body.starts_with("3 updates (rule r)")
                && m.body.contains("body 0")
                && m.body.contains("body 2")
        );

        let tg: Vec<Delivery> = (0..40)
            .map(|i| {
                delivery(
                    i,
                    telegram_from_text(&format!("t{i}"), &"x".repeat(300)),
                    None,
                )
            })
            .collect();
        let (m, n) = combine(Format::Telegram, &tg);
        assert!(n > 1 && n < 40, "{n}");
        assert!(m.body.chars().count() <= TELEGRAM_LIMIT);
        assert!(m.title.contains(&format!("{n} of 40")));

        let cards: Vec<Delivery> = (0..40)
            .map(|i| {
                delivery(
                    i,
                    card_from_text(&format!("t{i}"), &"y".repeat(2000)).to_string(),
                    None,
                )
            })
            .collect();
        let (m, n) = combine(Format::Teams, &cards);
        assert!(n > 1 && n < 40, "{n}");
        assert!(m.body.len() <= TEAMS_CARD_LIMIT);
        let card: Value = serde_json::from_str(&m.body).unwrap();
        assert_eq!(card["body"].as_array().unwrap().len(), n + 1);
    }
}
