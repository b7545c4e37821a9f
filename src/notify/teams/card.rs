//! The Adaptive Card a Teams Workflows webhook shows, built from a title and text, under the
//! size limit Teams accepts. The card is a JSON value from the moment it is built.

use serde_json::{json, Value};

use crate::model::{Body, Message};
use crate::notify::text::{fact_line, fold_breaks, truncate_chars, BREAK};

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
            .map(|(title, value)| {
                json!({ "title": markdown_escape(&title), "value": markdown_escape(&value) })
            })
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

/// Text for a Markdown-processed element (a `Fact`'s value): every character that Teams'
/// Markdown would turn into emphasis, a link, code, HTML, an entity, a heading, a quote or a
/// list is backslash-escaped, as CommonMark defines (the backslash itself is not shown), and
/// what a linkifier would take for an address (`evil.example`, `http://`) is broken up the
/// same way.
pub fn markdown_escape(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut at_start = true;
    for (i, &c) in chars.iter().enumerate() {
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let always = matches!(
            c,
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '<' | '>' | '&'
        );
        let leading = at_start && matches!(c, '#' | '-' | '+' | '=');
        // "1." or "1)" at the start is an ordered list.
        let numbered = matches!(c, '.' | ')')
            && chars[..i]
                .iter()
                .all(|d| d.is_ascii_digit() || d.is_whitespace())
            && prev.is_some_and(|p| p.is_ascii_digit());
        let address = (c == '.'
            && prev.is_some_and(char::is_alphanumeric)
            && next.is_some_and(char::is_alphabetic))
            || (c == ':' && chars.get(i + 1..i + 3) == Some(&['/', '/']));
        if always || leading || numbered || address {
            out.push('\\');
        }
        out.push(c);
        if !c.is_whitespace() {
            at_start = false;
        }
    }
    out
}

/// Literal blocks for one line of text, a block per line break inside it.
fn literal_value(text: &str, spacing: &str) -> Vec<Value> {
    text.split(BREAK)
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let mut block = literal_block(l, false);
            block["spacing"] = json!(if i == 0 { spacing } else { "None" });
            block
        })
        .collect()
}

/// The blocks of a message's text: a run of `Label: value` lines is a `FactSet` (values
/// Markdown-escaped); a long or multi-line value (notes) is its label over literal lines;
/// any other line is literal. Only the template's own lines can be facts: a line break in a
/// customer's value never starts one ([`BREAK`]).
fn structured(text: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut facts: Vec<Value> = Vec::new();
    let mut gap = false;
    let flush = |facts: &mut Vec<Value>, out: &mut Vec<Value>| {
        if !facts.is_empty() {
            out.push(json!({ "type": "FactSet", "facts": std::mem::take(facts) }));
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut facts, &mut out);
            gap = true;
            continue;
        }
        let spacing = if gap { "Medium" } else { "None" };
        gap = false;
        match fact_line(line) {
            Some((label, value))
                if !value.contains(BREAK) && value.chars().count() <= 160 && label != "Notes" =>
            {
                facts.push(json!({ "title": label, "value": markdown_escape(value) }));
            }
            Some((label, value)) => {
                flush(&mut facts, &mut out);
                out.push(json!({ "type": "TextBlock", "text": label, "weight": "Bolder", "spacing": "Medium", "wrap": true }));
                out.extend(literal_value(value, "Small"));
            }
            None => {
                flush(&mut facts, &mut out);
                out.extend(literal_value(line, spacing));
            }
        }
    }
    flush(&mut facts, &mut out);
    out
}

/// [`card_from_text`] with an "Open in Partner Center" `Action.OpenUrl` to `link`. Nothing a
/// customer wrote becomes Markdown: the title and lines are literal runs, fact values are
/// escaped.
pub fn card_with_link(title: &str, rest: &str, link: Option<&str>) -> Value {
    let title = fold_breaks(title);
    let card = |body: &str| {
        let mut blocks = vec![literal_block(&title, true)];
        blocks.extend(structured(body));
        let mut card = adaptive_card(blocks);
        if let Some(url) = link {
            card["actions"] = json!([{ "type": "Action.OpenUrl", "title": crate::notify::OPEN_IN_PARTNER_CENTER, "url": url }]);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What a CommonMark reader shows of `markdown`, and whether it saw any markup.
    fn shown(markdown: &str) -> (String, bool) {
        use pulldown_cmark::{Event, Parser, Tag, TagEnd};
        let mut text = String::new();
        let mut markup = false;
        for event in Parser::new(markdown) {
            match event {
                Event::Text(t) => text.push_str(&t),
                Event::Start(Tag::Paragraph) | Event::End(TagEnd::Paragraph) => {}
                _ => markup = true,
            }
        }
        (text, markup)
    }

    #[test]
    fn escaped_values_show_exactly_as_written_and_make_no_markup() {
        for value in [
            "**Northwind** _Traders_ [sale](http://evil.example/login)",
            "- Teams Phone",
            "+ one",
            "# Heading",
            "> quote",
            "1. first",
            "12) twelfth",
            "&lt;b&gt; &amp; <b>x</b> `code` ~~gone~~ \\* back\\slash",
            "Contoso Ltd. — 1,250,000.50 USD · 3.5 stars",
            "===",
            "O'Brien & \"Sons\" 🎉",
        ] {
            let escaped = markdown_escape(value);
            let (text, markup) = shown(&escaped);
            assert!(!markup, "{value:?} → {escaped:?} makes markup");
            assert_eq!(text, value, "the backslashes show: {escaped:?}");
        }
        // What a linkifier would take for an address is not whole.
        let e = markdown_escape("see www.evil.example or https://evil.example/x");
        assert!(!e.contains("evil.example") && !e.contains("s://"), "{e}");
        // Plain words, numbers and dates stay as they are.
        assert_eq!(
            markdown_escape("Tue 15 Dec 2026 19:30 CET"),
            "Tue 15 Dec 2026 19:30 CET"
        );
        assert_eq!(markdown_escape("185,000.50 USD"), "185,000.50 USD");
    }

    #[test]
    fn label_lines_become_facts_and_a_customers_line_break_never_does() {
        let text = format!(
            "Customer: Contoso\nDeal value: 50,000 USD\n\nNotes: first{BREAK}Status: Won{BREAK}third\nReferral id: r-1"
        );
        let blocks = structured(&text);
        let kinds: Vec<&str> = blocks.iter().map(|b| b["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "FactSet",
                "TextBlock",
                "RichTextBlock",
                "RichTextBlock",
                "RichTextBlock",
                "FactSet"
            ]
        );
        assert_eq!(blocks[0]["facts"][1]["title"], "Deal value");
        // "Status: Won" inside the notes is a line of the notes, not a fact.
        assert_eq!(blocks[3]["inlines"][0]["text"], "Status: Won");
        assert_eq!(blocks[5]["facts"].as_array().unwrap().len(), 1);
    }
}
