//! Grouped messages (`group: 10m` on a rule): the deliveries of one rule and channel that
//! wait together are sent as one message. A group larger than the channel allows (Telegram's
//! 4096 characters, Teams' 28 KB) is split into as many messages as needed.

use serde_json::json;

use super::email::html::html_from_text;
use super::teams::card::{adaptive_card, card_of, card_size, title_block, TEAMS_CARD_LIMIT};
use super::telegram::markup::{message_html, TELEGRAM_LIMIT};
use super::text::html_escape;
use crate::model::{Body, Delivery, EventKind, Format, Message};

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
    match &m.body {
        Body::Telegram { html } if format == Format::Telegram => {
            super::telegram::markup::telegram_length(html) <= TELEGRAM_LIMIT
        }
        Body::Teams { card } if format == Format::Teams => card_size(card) <= TEAMS_CARD_LIMIT,
        _ => true,
    }
}

fn single(format: Format, part: &[Delivery], total: usize) -> Message {
    if part.len() == 1 && total == 1 {
        return part[0].message.clone();
    }
    let title = title(part, total);
    let texts: Vec<String> = part
        .iter()
        .map(|d| d.message.body.plain().into_owned())
        .collect();
    let body = match format {
        Format::Text => Body::Text {
            text: format!("{title}\n\n{}", texts.join(SEPARATOR)),
        },
        Format::Html => {
            let text = texts.join(SEPARATOR);
            Body::Html {
                html: html_from_text(&title, &text),
                text: format!("{title}\n\n{text}"),
            }
        }
        Format::Telegram => {
            let bodies: Vec<String> = part.iter().map(|d| message_html(&d.message)).collect();
            Body::Telegram {
                html: format!("<b>{}</b>\n\n{}", html_escape(&title), bodies.join("\n\n")),
            }
        }
        Format::Teams => {
            let mut body = vec![title_block(&title)];
            for d in part {
                let card = card_of(&d.message);
                let items = card.get("body").cloned().unwrap_or_else(
                    || json!([{ "type": "TextBlock", "text": d.message.title, "wrap": true }]),
                );
                body.push(json!({ "type": "Container", "separator": true, "items": items }));
            }
            Body::Teams {
                card: adaptive_card(body),
            }
        }
    };
    Message { title, body }
}

/// What `n` messages about `kind` are, in words.
fn phrase(kind: Option<EventKind>, n: usize) -> String {
    let (one, many) = match kind.map(EventKind::as_str) {
        Some("referral.new") => ("new referral", "new referrals"),
        Some("referral.expiring") => ("referral to answer soon", "referrals to answer soon"),
        Some("referral.expired") => ("expired referral", "expired referrals"),
        Some("referral.status_changed") => ("referral status change", "referral status changes"),
        Some("referral.closed") => ("closed referral", "closed referrals"),
        Some("referral.changed") => ("referral update", "referral updates"),
        Some("referral.removed") => ("referral no longer listed", "referrals no longer listed"),
        Some("partner_referral.new") => ("new partner referral", "new partner referrals"),
        Some(k) if k.starts_with("partner_referral.") => {
            ("partner referral change", "partner referral changes")
        }
        Some(k) if k.starts_with("copilot") || k.starts_with("adoption") => {
            ("Copilot adoption change", "Copilot adoption changes")
        }
        Some(k) if k.starts_with("mci") => ("MCI change", "MCI changes"),
        Some(k) if k.starts_with("license") => ("license usage change", "license usage changes"),
        Some(k) if k.starts_with("system.") => ("service notice", "service notices"),
        _ => ("update", "updates"),
    };
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The title of a group: what it holds, by kind, and the deal value it adds up to ("3 new
/// referrals — 412,000 USD"); "(12 of 40)" when the group is split.
fn title(part: &[Delivery], total: usize) -> String {
    let mut kinds: Vec<(Option<EventKind>, usize)> = Vec::new();
    let mut sums: Vec<(String, f64)> = Vec::new();
    for d in part {
        match kinds.iter_mut().find(|(k, _)| *k == d.kind) {
            Some((_, n)) => *n += 1,
            None => kinds.push((d.kind, 1)),
        }
        if let Some(a) = &d.amount {
            match sums.iter_mut().find(|(c, _)| *c == a.currency) {
                Some((_, v)) => *v += a.value,
                None => sums.push((a.currency.clone(), a.value)),
            }
        }
    }
    let mut title = kinds
        .iter()
        .map(|(k, n)| phrase(*k, *n))
        .collect::<Vec<_>>()
        .join(", ");
    if !sums.is_empty() {
        let money: Vec<String> = sums
            .iter()
            .map(|(c, v)| super::text::money(&json!(v), c))
            .collect();
        title.push_str(&format!(" — {}", money.join(" + ")));
    }
    if part.len() < total {
        title.push_str(&format!(" ({} of {total})", part.len()));
    }
    title
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::teams::card::card_from_text;
    use crate::notify::telegram::markup::telegram_from_text;

    fn delivery(i: usize, body: Body) -> Delivery {
        let message = Message {
            title: format!("t{i}"),
            body,
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
            .map(|i| {
                let text = format!("t{i}\nbody {i}");
                delivery(i, Body::Text { text })
            })
            .collect();
        let (m, n) = combine(Format::Text, &texts);
        assert_eq!(n, 3);
        let text = m.body.raw();
        assert!(
            text.starts_with("3 new referrals")
                && text.contains("body 0")
                && text.contains("body 2")
        );

        let tg: Vec<Delivery> = (0..40)
            .map(|i| {
                let html = telegram_from_text(&format!("t{i}"), &"x".repeat(300));
                delivery(i, Body::Telegram { html })
            })
            .collect();
        let (m, n) = combine(Format::Telegram, &tg);
        assert!(n > 1 && n < 40, "{n}");
        assert!(super::super::telegram::markup::telegram_length(&m.body.raw()) <= TELEGRAM_LIMIT);
        assert!(m.title.contains(&format!("{n} of 40")));

        let cards: Vec<Delivery> = (0..40)
            .map(|i| {
                let card = card_from_text(&format!("t{i}"), &"y".repeat(2000));
                delivery(i, Body::Teams { card })
            })
            .collect();
        let (m, n) = combine(Format::Teams, &cards);
        assert!(n > 1 && n < 40, "{n}");
        let Body::Teams { card } = &m.body else {
            panic!("a card: {:?}", m.body)
        };
        assert!(card_size(card) <= TEAMS_CARD_LIMIT);
        assert_eq!(card["body"].as_array().unwrap().len(), n + 1);
    }
}
