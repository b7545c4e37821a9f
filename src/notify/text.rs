//! Text helpers every channel's markup shares.

/// Escapes text for HTML (and Telegram's HTML parse mode).
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The first `max` characters of `s`, and how many were cut.
pub fn truncate_chars(s: &str, max: usize) -> (&str, usize) {
    match s.char_indices().nth(max) {
        None => (s, 0),
        Some((at, _)) => (&s[..at], s[at..].chars().count()),
    }
}

/// Where a value put into a text template had a line break: the template's own lines are the
/// message's structure (title, facts, paragraphs), so a customer's newline must not start a
/// line of its own — it would split a title or pass for a fact. Each channel shows it as a
/// break inside the value it belongs to (U+2028 LINE SEPARATOR).
pub const BREAK: char = '\u{2028}';

/// A value for a text template: its line breaks marked as [`BREAK`].
pub fn mark_breaks(s: &str) -> String {
    s.replace("\r\n", "\n")
        .replace(['\n', '\r'], &BREAK.to_string())
}

/// Text with its marked breaks back as newlines (plain text, email, Telegram).
pub fn unmark_breaks(s: &str) -> String {
    s.replace(BREAK, "\n")
}

/// A line for a title or subject: every break folded into a space.
pub fn fold_breaks(s: &str) -> String {
    s.replace([BREAK, '\n', '\r'], " ")
}

/// An amount with grouping and its currency: "185,000 USD", "1,234.50 EUR".
pub fn money(amount: &serde_json::Value, currency: &str) -> String {
    let Some(n) = amount.as_f64() else {
        return format!("{} {currency}", amount.as_str().unwrap_or("?"))
            .trim()
            .to_string();
    };
    let whole = n.trunc().abs() as u64;
    let cents = ((n.abs() - n.abs().trunc()) * 100.0).round() as u64;
    let digits = whole.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if n < 0.0 { "-" } else { "" };
    let frac = if cents > 0 {
        format!(".{cents:02}")
    } else {
        String::new()
    };
    format!("{sign}{grouped}{frac} {currency}")
        .trim()
        .to_string()
}

/// A `Label: value` line of a template: a short label of letters ("Respond by", "Deal
/// value") and its value. Channels lay these out as facts (a Teams `FactSet`, a table in
/// email); a customer's own line break never makes one ([`BREAK`]).
pub fn fact_line(line: &str) -> Option<(&str, &str)> {
    let (label, value) = line.split_once(": ")?;
    let ok = (1..=24).contains(&label.len())
        && label.starts_with(|c: char| c.is_ascii_uppercase())
        && label.chars().all(|c| c.is_ascii_alphabetic() || c == ' ');
    (ok && !value.trim().is_empty()).then_some((label, value.trim()))
}
