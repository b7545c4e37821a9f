//! The Adaptive Card a Teams Workflows webhook shows, built from a title and text, under the
//! size limit Teams accepts. The card is a JSON value from the moment it is built.

use serde_json::{json, Value};

use crate::model::{Body, Message};
use crate::notify::text::truncate_chars;

/// Teams rejects cards over 28 KB; the card is kept under this many bytes of JSON.
pub const TEAMS_CARD_LIMIT: usize = 26 * 1024;

/// An Adaptive Card (version 1.4) with these body elements.
pub fn adaptive_card(body: Vec<Value>) -> Value {
    json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body
    })
}

/// The card's heading: its title in bold.
pub fn title_block(title: &str) -> Value {
    json!({ "type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": true })
}

/// A card of headings, fact sets and short lists under a title (the digest's summary).
#[derive(Debug, Clone)]
pub struct CardBuilder {
    body: Vec<Value>,
}

impl CardBuilder {
    pub fn new(title: &str) -> CardBuilder {
        CardBuilder {
            body: vec![title_block(title)],
        }
    }

    /// A subtle line right under the title.
    pub fn subtitle(mut self, text: &str) -> CardBuilder {
        self.body.push(json!({ "type": "TextBlock", "text": text, "isSubtle": true, "spacing": "None", "wrap": true }));
        self
    }

    /// The heading of a section.
    pub fn heading(&mut self, text: &str) {
        self.body.push(json!({ "type": "TextBlock", "text": text, "weight": "Bolder", "spacing": "Medium", "wrap": true }));
    }

    /// Name/value pairs.
    pub fn facts(&mut self, pairs: Vec<(String, String)>) {
        let facts: Vec<Value> = pairs
            .into_iter()
            .map(|(title, value)| json!({ "title": title, "value": value }))
            .collect();
        self.body.push(json!({ "type": "FactSet", "facts": facts }));
    }

    /// Lines of text (customer names among them), each shown as it is.
    pub fn list(&mut self, lines: Vec<String>) {
        let mut blocks = literal_lines(&lines.join("\n"));
        if let Some(first) = blocks.first_mut() {
            first["spacing"] = json!("Small");
        }
        self.body.extend(blocks);
    }

    pub fn build(self) -> Value {
        adaptive_card(self.body)
    }
}

/// Whether a value is an Adaptive Card.
pub fn is_card(card: &Value) -> bool {
    card.get("type").and_then(Value::as_str) == Some("AdaptiveCard")
}

/// The size of a card as Teams receives it.
pub fn card_size(card: &Value) -> usize {
    serde_json::to_vec(card).map_or(usize::MAX, |v| v.len())
}

/// Text that Teams shows as it is: a `RichTextBlock` of one `TextRun`. Teams reads a
/// `TextBlock`'s text as Markdown (a customer's `[x](http://…)` would become a live link, `**`
/// bold, `- ` a list); a `TextRun` is never Markdown-processed.
pub fn literal_block(text: &str, bold: bool) -> Value {
    let mut run = json!({ "type": "TextRun", "text": text });
    if bold {
        run["weight"] = json!("Bolder");
        run["size"] = json!("Medium");
    }
    json!({ "type": "RichTextBlock", "inlines": [run] })
}

/// A generic Adaptive Card from a title and text, under the Teams size limit.
pub fn card_from_text(title: &str, rest: &str) -> Value {
    card_with_link(title, rest, None)
}

/// The lines of `text` as literal blocks, one per line (Teams joins a single `\n` inside a
/// block into one run-on paragraph); a blank line spaces the next block.
fn literal_lines(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut gap = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            gap = true;
            continue;
        }
        let mut block = literal_block(line, false);
        block["spacing"] = json!(if gap { "Medium" } else { "None" });
        gap = false;
        out.push(block);
    }
    out
}

/// [`card_from_text`] with an "Open in Partner Center" `Action.OpenUrl` to `link`. The title
/// and every line of the text are literal: nothing a customer wrote becomes Markdown.
pub fn card_with_link(title: &str, rest: &str, link: Option<&str>) -> Value {
    let title = title.replace(['\r', '\n'], " ");
    let card = |body: &str| {
        let mut blocks = vec![literal_block(&title, true)];
        blocks.extend(literal_lines(body));
        let mut card = adaptive_card(blocks);
        if let Some(url) = link {
            card["actions"] = json!([{ "type": "Action.OpenUrl", "title": "Open in Partner Center", "url": url }]);
        }
        card
    };
    let mut budget = rest.chars().count();
    loop {
        let (kept, cut) = truncate_chars(rest, budget);
        let body = if cut > 0 {
            format!("{kept}\n… ({cut} more characters)")
        } else {
            kept.to_string()
        };
        let c = card(&body);
        if card_size(&c) <= TEAMS_CARD_LIMIT || budget == 0 {
            return c;
        }
        budget = budget * 9 / 10;
    }
}

/// A message as an Adaptive Card: its card if it has one, else one built from its text.
pub fn card_of(m: &Message) -> Value {
    match &m.body {
        Body::Teams { card } if is_card(card) => card.clone(),
        Body::Legacy { body, .. } => serde_json::from_str::<Value>(body)
            .ok()
            .filter(is_card)
            .unwrap_or_else(|| card_from_text(&m.title, body)),
        other => card_from_text(&m.title, &other.plain()),
    }
}
