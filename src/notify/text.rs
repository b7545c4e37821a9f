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
