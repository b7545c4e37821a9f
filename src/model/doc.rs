//! [`Doc`]: a JSON document kept as its text until something reads it.
//!
//! The version a change replaced is an event's `previous`. A steady sweep of 100,000
//! referrals with 1 % changed holds a thousand of them, and most are never read: the change
//! itself is found by comparing the two texts (the detectors' `changes_in_text`), the
//! event log keeps the text as it is, and only a rule that reads `previous`, a template that
//! shows it or a detector that needs more than a few named fields parses it.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON document, as text, as a parsed value, or both.
pub struct Doc {
    /// JSON text, checked to be JSON before it was made a `Doc`. Dropped when the value is
    /// changed ([`Doc::value_mut`]).
    text: Option<Box<[u8]>>,
    value: OnceLock<Value>,
}

impl Doc {
    /// A document from its JSON text, which the caller has checked to be JSON (a stored
    /// record was when it arrived); parsed on first read.
    pub fn from_text(text: impl Into<Box<[u8]>>) -> Doc {
        Doc {
            text: Some(text.into()),
            value: OnceLock::new(),
        }
    }

    /// The document as a value, parsed from its text the first time. A text that is not JSON
    /// after all reads as `null`, with a warning.
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| match &self.text {
            Some(text) => serde_json::from_slice(text).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "a stored document is not JSON; read as null");
                Value::Null
            }),
            None => Value::Null,
        })
    }

    /// The value, to change: the text is dropped, since it would no longer match.
    pub fn value_mut(&mut self) -> &mut Value {
        self.value();
        self.text = None;
        self.value.get_mut().expect("just read")
    }

    pub fn into_value(mut self) -> Value {
        self.value();
        self.value.take().expect("just read")
    }

    /// The JSON text, where the document still has it.
    pub fn text(&self) -> Option<&[u8]> {
        self.text.as_deref()
    }

    /// Whether the text has been parsed (or the document was made from a value).
    pub fn is_parsed(&self) -> bool {
        self.value.get().is_some()
    }

    /// The top-level members named any of `names` in any casing, as an object, without
    /// parsing the rest of an unparsed text: enough for [`super::field`] to find each of those
    /// names as it would in the whole document. `None` if the document is not an object.
    pub fn members_named(&self, names: &[&str]) -> Option<Value> {
        let wanted = |key: &str| names.iter().any(|n| n.eq_ignore_ascii_case(key));
        if let (Some(text), None) = (&self.text, self.value.get()) {
            if text.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
                return None;
            }
            let mut out = serde_json::Map::new();
            let mut whole = true;
            for item in sonic_rs::to_object_iter(&text[..]) {
                let Ok((key, value)) = item else {
                    whole = false;
                    break;
                };
                if wanted(&key) {
                    let value = serde_json::from_str(value.as_raw_str()).unwrap_or(Value::Null);
                    out.insert(key.into_owned(), value);
                }
            }
            if whole {
                return Some(Value::Object(out));
            }
            // Not read to its end: the whole text is read instead, as any other reader would.
        }
        let object = self.value().as_object()?;
        Some(Value::Object(
            object
                .iter()
                .filter(|(k, _)| wanted(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ))
    }
}

impl From<Value> for Doc {
    fn from(value: Value) -> Doc {
        Doc {
            text: None,
            value: OnceLock::from(value),
        }
    }
}

impl std::ops::Deref for Doc {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl Clone for Doc {
    fn clone(&self) -> Doc {
        Doc {
            text: self.text.clone(),
            value: self.value.clone(),
        }
    }
}

impl std::fmt::Debug for Doc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

impl PartialEq for Doc {
    fn eq(&self, other: &Doc) -> bool {
        match (self.text(), other.text()) {
            (Some(a), Some(b)) if a == b => true,
            _ => self.value() == other.value(),
        }
    }
}

impl PartialEq<Value> for Doc {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl Serialize for Doc {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Doc {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Doc, D::Error> {
        Value::deserialize(deserializer).map(Doc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_text_is_read_only_when_its_value_is() {
        let doc = Doc::from_text(
            br#"{"status": "Active", "SubStatus": "Pending", "n": {"a": 1}}"#.to_vec(),
        );
        let named = doc.members_named(&["status", "substatus"]).unwrap();
        assert!(!doc.is_parsed(), "named members are read from the text");
        assert_eq!(named, json!({"status": "Active", "SubStatus": "Pending"}));
        assert_eq!(
            super::super::field(&named, "substatus"),
            super::super::field(doc.value(), "substatus"),
            "found in any casing, as in the whole document"
        );
        assert!(doc.is_parsed());
        assert_eq!(doc["n"]["a"], 1);
        assert_eq!(doc.members_named(&["n"]).unwrap(), json!({"n": {"a": 1}}));
    }

    #[test]
    fn a_changed_value_loses_its_text() {
        let mut doc = Doc::from_text(br#"{"a": 1}"#.to_vec());
        doc.value_mut()["a"] = json!(2);
        assert!(doc.text().is_none(), "the text would say a is 1");
        assert_eq!(serde_json::to_value(&doc).unwrap(), json!({"a": 2}));
    }

    #[test]
    fn not_json_reads_as_null() {
        let doc = Doc::from_text(b"{nope".to_vec());
        assert_eq!(doc.members_named(&["a"]), None);
        assert!(doc.value().is_null());
        assert_eq!(Doc::from_text(b"[1]".to_vec()).members_named(&["a"]), None);
    }
}
