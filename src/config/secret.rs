//! [`Secret`]: a configuration value that must never be printed. Its `Debug` and `Display`
//! show `***`; the only way to the value is [`Secret::expose`], called where it is sent.
//!
//! Every secret that is read is also remembered, with the pieces of it a far end might echo
//! back — a webhook URL's path and query and their values, an SMTP password, its base64 in an
//! `AUTH` line — and [`redact`] scrubs all of them, and any bearer or bot token, from a text.
//! Errors that quote a server and every log line pass through it. Must never: print a value.

use std::borrow::Cow;
use std::fmt;
use std::sync::RwLock;

use base64::Engine;
use serde::{Deserialize, Deserializer};

use super::env::EnvString;

/// Shorter pieces than this are not scrubbed on their own (they would match ordinary text).
const MIN_PIECE: usize = 6;

/// The pieces of every secret read so far, longest first.
static PIECES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// The texts a far end might quote of `value`.
fn pieces(value: &str) -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut out = vec![value.to_string(), b64(value)];
    if let Ok(url) = url::Url::parse(value) {
        if url.has_host() {
            let path_and_query = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            };
            out.push(path_and_query);
            out.push(url.path().to_string());
            if let Some(q) = url.query() {
                out.push(q.to_string());
            }
            for (_, v) in url.query_pairs() {
                out.push(v.into_owned());
            }
            // Path segments long enough to be keys (a Workflows signature, a bot token).
            for segment in url.path_segments().into_iter().flatten() {
                if segment.len() >= 16 {
                    out.push(segment.to_string());
                }
            }
            let user = url.username().to_string();
            if let Some(password) = url.password() {
                let decoded = percent_decode(password);
                out.push(password.to_string());
                out.push(b64(&decoded));
                out.push(b64(&format!("\0{user}\0{decoded}")));
                out.push(b64(&format!("{user}:{decoded}")));
                out.push(decoded);
            }
        }
    }
    out.retain(|p| p.len() >= MIN_PIECE && p != "/");
    out
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn remember(value: &str) {
    let mut known = PIECES.write().unwrap_or_else(|e| e.into_inner());
    for piece in pieces(value) {
        if !known.contains(&piece) {
            known.push(piece);
        }
    }
    known.sort_by_key(|p| std::cmp::Reverse(p.len()));
}

/// `text` with every known secret, every piece of one a far end might echo, and any bearer or
/// Telegram bot token replaced by `***`.
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = PIECES.read().unwrap_or_else(|e| e.into_inner());
    let mut out = Cow::Borrowed(text);
    for piece in known.iter() {
        if out.contains(piece.as_str()) {
            out = Cow::Owned(out.replace(piece.as_str(), "***"));
        }
    }
    drop(known);
    scrub_tokens(out)
}

/// Bearer tokens (`Bearer eyJ…`) and Telegram bot tokens (`123456:AA…`), whoever's they are.
fn scrub_tokens(text: Cow<'_, str>) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest: &str = &text;
    let mut changed = false;
    while let Some((start, end)) = next_token(rest) {
        out.push_str(&rest[..start]);
        out.push_str("***");
        rest = &rest[end..];
        changed = true;
    }
    if !changed {
        return text;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The byte range of the first token in `text`: what follows `Bearer `, or a bot token
/// (six or more digits, `:`, thirty or more token characters).
fn next_token(text: &str) -> Option<(usize, usize)> {
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    let bytes = text.as_bytes();
    let mut from = 0;
    let bearer = loop {
        let Some(i) = text[from..].find("Bearer ") else {
            break None;
        };
        let start = from + i + "Bearer ".len();
        let len = bytes[start..]
            .iter()
            .take_while(|b| token_char(**b))
            .count();
        if len >= MIN_PIECE && &text[start..start + len] != "***" {
            break Some((start, start + len));
        }
        from = start;
    };
    let mut bot = None;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let digits = bytes[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            let colon = i + digits;
            if digits >= 6 && bytes.get(colon) == Some(&b':') {
                let tail = bytes[colon + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_' || **b == b'-')
                    .count();
                if tail >= 30 {
                    bot = Some((i, colon + 1 + tail));
                    break;
                }
            }
            i += digits;
        } else {
            i += 1;
        }
    }
    match (bearer, bot) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// A token, password, webhook URL or anything else that grants access.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value = value.into();
        remember(&value);
        Self(value)
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with this secret, its pieces and every other known secret replaced by `***`,
    /// for error messages that quote what a server or library said (see [`redact`]).
    pub fn redact(&self, text: &str) -> String {
        let text = if self.0.len() >= 4 {
            text.replace(&self.0, "***")
        } else {
            text.to_string()
        };
        redact(&text).into_owned()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EnvString::deserialize(deserializer).map(|s| Secret::new(s.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pieces_a_far_end_echoes_are_scrubbed_too() {
        let _hook = Secret::new("https://hooks.example/workflows/abc123?sig=Zm9vYmFyYmF6cXV4");
        let _smtp = Secret::new("smtp://mailer:p%40ss-w0rd!@mail.example:587");
        for (echo, secret) in [
            (
                "Cannot POST /workflows/abc123?sig=Zm9vYmFyYmF6cXV4",
                "Zm9vYmFyYmF6cXV4",
            ),
            ("bad signature Zm9vYmFyYmF6cXV4", "Zm9vYmFyYmF6cXV4"),
            (
                "535 AUTH PLAIN AG1haWxlcgBwQHNzLXcwcmQh refused",
                "AG1haWxlcgBwQHNzLXcwcmQh",
            ),
            ("password p@ss-w0rd! rejected", "p@ss-w0rd!"),
            (
                "got Authorization: Bearer eyJ0eXAiOiJKV1Qi.x.y",
                "eyJ0eXAiOiJKV1Qi",
            ),
            (
                "POST /bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
                "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
            ),
        ] {
            let clean = redact(echo);
            assert!(!clean.contains(secret), "{echo} -> {clean}");
            assert!(clean.contains("***"), "{clean}");
        }
        assert_eq!(
            redact("nothing secret here, Bearer of news"),
            "nothing secret here, Bearer of news"
        );
    }

    #[test]
    fn secret_never_prints_its_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert_eq!(
            s.redact("POST https://x/hunter2-very-secret failed"),
            "POST https://x/*** failed"
        );
    }
}
