//! `${NAME}` interpolation: every string in the configuration may name environment variables.
//! The expansion happens while the YAML is read, so an unset variable is reported at the
//! line and column where it is used, and a value with YAML-special characters (a password with
//! `#` or `: `) is taken as it is.

use serde::{Deserialize, Deserializer};

/// A configuration string with `${NAME}` expanded from the environment.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EnvString(pub String);

impl std::ops::Deref for EnvString {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EnvString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EnvString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        expand(&raw, |name| std::env::var(name).ok())
            .map(EnvString)
            .map_err(serde::de::Error::custom)
    }
}

/// An [`EnvString`] that may also be written as a whole number (a Telegram `chat_id` such as
/// `-1001234567890` needs no quotes). Only for fields inside a channel, whose values reach
/// here already typed; a bare `off` elsewhere stays the word it is.
pub fn string_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EnvString, D::Error> {
    struct Text;
    impl serde::de::Visitor<'_> for Text {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string or a whole number")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    let raw = deserializer.deserialize_any(Text)?;
    expand(&raw, |name| std::env::var(name).ok())
        .map(EnvString)
        .map_err(serde::de::Error::custom)
}

/// Expands `${NAME}` in `raw` with `lookup`. `$$` stands for a literal `$`.
pub fn expand(raw: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                // The value is not quoted: it may be a secret written in place.
                .ok_or_else(|| "unclosed `${` in the value: write ${NAME}".to_string())?;
            let name = &body[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!(
                    "`${{{name}}}` is not a variable name: use letters, digits and _"
                ));
            }
            let value = lookup(name).ok_or_else(|| {
                format!("environment variable {name} is not set (it is used here as ${{{name}}})")
            })?;
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A duration is read through [`EnvString`], so `every: ${POLL_EVERY}` works too.
impl<'de> Deserialize<'de> for crate::duration::Every {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = EnvString::deserialize(deserializer)?;
        raw.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "TOKEN").then(|| "a#b: c".to_string())
    }

    #[test]
    fn expands_names_and_keeps_special_characters() {
        assert_eq!(expand("Bearer ${TOKEN}!", env).unwrap(), "Bearer a#b: c!");
        assert_eq!(
            expand("cost $5 and $${TOKEN}", env).unwrap(),
            "cost $5 and ${TOKEN}"
        );
    }

    #[test]
    fn missing_variable_is_named() {
        let err = expand("${NOPE_NOT_SET}", env).unwrap_err();
        assert!(err.contains("NOPE_NOT_SET is not set"), "{err}");
        assert!(expand("${oops", env).unwrap_err().contains("unclosed"));
    }
}
