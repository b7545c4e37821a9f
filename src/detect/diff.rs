//! Field-level differences between two JSON documents, addressed by JSON pointers
//! (`/details/dealValue`), as events carry them in `changes`.

use serde_json::Value;

use crate::model::Change;

/// Every leaf that differs between `old` and `new`. Objects are compared key by key, arrays
/// index by index; a value that changes type is one change at its own path.
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(&mut String::new(), old, new, &mut out);
    out
}

fn walk(path: &mut String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, va) in a {
                let len = push(path, key);
                walk(path, va, b.get(key).unwrap_or(&Value::Null), out);
                path.truncate(len);
            }
            for (key, vb) in b {
                if !a.contains_key(key) && !vb.is_null() {
                    let len = push(path, key);
                    out.push(Change {
                        path: path.clone(),
                        old: Value::Null,
                        new: vb.clone(),
                    });
                    path.truncate(len);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = push(path, &i.to_string());
                walk(
                    path,
                    a.get(i).unwrap_or(&Value::Null),
                    b.get(i).unwrap_or(&Value::Null),
                    out,
                );
                path.truncate(len);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.clone()
            },
            old: a.clone(),
            new: b.clone(),
        }),
    }
}

/// [`changes`] between two documents given as JSON text, reading only what differs: the
/// members of two objects are compared as text, those whose text differs are compared in
/// turn (member by member where both are objects), and only the values that differ are
/// parsed. A steady sweep's changed record differs in a field or two of its thirty.
/// Anything but two objects, and an object that names a member twice, is parsed and
/// compared as [`changes`] compares it. An error if either is not JSON.
pub fn changes_in_text(old: &[u8], new: &[u8]) -> Result<Vec<Change>, String> {
    let mut out = Vec::new();
    walk_text(&mut String::new(), old, new, &mut out)?;
    Ok(out)
}

fn walk_text(
    path: &mut String,
    old: &[u8],
    new: &[u8],
    out: &mut Vec<Change>,
) -> Result<(), String> {
    let parse = |raw: &[u8]| serde_json::from_slice::<Value>(raw).map_err(|e| e.to_string());
    let (Some(a), Some(b)) = (members(old)?, members(new)?) else {
        walk(path, &parse(old)?, &parse(new)?, out);
        return Ok(());
    };
    for (i, (key, va)) in a.iter().enumerate() {
        let len = push(path, key);
        match member(&b, key, i) {
            Some(vb) if vb == *va => {}
            Some(vb) => walk_text(path, va, vb, out)?,
            None => walk(path, &parse(va)?, &Value::Null, out),
        }
        path.truncate(len);
    }
    for (i, (key, vb)) in b.iter().enumerate() {
        if member(&a, key, i).is_none() {
            let value = parse(vb)?;
            if !value.is_null() {
                let len = push(path, key);
                out.push(Change {
                    path: path.clone(),
                    old: Value::Null,
                    new: value,
                });
                path.truncate(len);
            }
        }
    }
    Ok(())
}

/// A member of a JSON object: its name, and its value as text.
type Member<'a> = (std::borrow::Cow<'a, str>, &'a [u8]);

/// The top-level members of a JSON object as (name, value as text), in their order; `None`
/// if the text is not an object or names a member twice (where the last one counts).
fn members(raw: &[u8]) -> Result<Option<Vec<Member<'_>>>, String> {
    let first = raw.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Ok(None);
    }
    let mut out = Vec::new();
    for item in sonic_rs::to_object_iter(raw) {
        let (key, value) = item.map_err(|e| e.to_string())?;
        let text = within(raw, value.as_raw_str().as_bytes()).ok_or("a member not in place")?;
        out.push((key, text));
    }
    let mut names: Vec<&str> = out.iter().map(|(k, _)| k.as_ref()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| w[0] == w[1]) {
        return Ok(None);
    }
    Ok(Some(out))
}

/// `part` as a slice of `whole`, if it lies within it.
fn within<'a>(whole: &'a [u8], part: &[u8]) -> Option<&'a [u8]> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    whole.get(start..start + part.len())
}

/// The text of member `key`, looked for first at `hint` (two versions of a record list
/// their members in the same order).
fn member<'a>(members: &[Member<'a>], key: &str, hint: usize) -> Option<&'a [u8]> {
    match members.get(hint) {
        Some((k, v)) if k == key => Some(*v),
        _ => members.iter().find(|(k, _)| k == key).map(|(_, v)| *v),
    }
}

/// Appends `/key` (escaped per RFC 6901) and returns the length before it.
fn push(path: &mut String, key: &str) -> usize {
    let len = path.len();
    path.push('/');
    for c in key.chars() {
        match c {
            '~' => path.push_str("~0"),
            '/' => path.push_str("~1"),
            c => path.push(c),
        }
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_values_arrays_and_escaped_keys() {
        let old = json!({"a": 1, "d": {"v": 10, "n": "x"}, "t": [1, 2], "k/x": "p", "gone": true});
        let new =
            json!({"a": 1, "d": {"v": 20, "n": "x"}, "t": [1, 3, 4], "k/x": "q", "added": "y"});
        let got: Vec<(String, Value, Value)> = changes(&old, &new)
            .into_iter()
            .map(|c| (c.path, c.old, c.new))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/d/v".into(), json!(10), json!(20)),
                ("/t/1".into(), json!(2), json!(3)),
                ("/t/2".into(), Value::Null, json!(4)),
                ("/k~1x".into(), json!("p"), json!("q")),
                ("/gone".into(), json!(true), Value::Null),
                ("/added".into(), Value::Null, json!("y")),
            ]
        );
        assert!(changes(&new, &new).is_empty());
    }

    #[test]
    fn changes_in_text_agree_with_changes_of_the_parsed_documents() {
        let docs = [
            r#"{"a": 1, "d": {"v": 10, "n": "x"}, "t": [1, 2], "k/x": "p", "gone": true}"#,
            r#"{"a":1,"d":{"v":20,"n":"x"},"t":[1,3,4],"k/x":"q","added":"y"}"#,
            // The same members in another order and spacing, one spelled with an escape.
            r#"{ "gone" : true, "k/x": "\u0070", "t": [1, 2], "d": {"n": "x", "v": 10}, "a": 1 }"#,
            r#"{"a": 1, "d": {"v": 10}, "nothing": null}"#,
            r#"{"a": 1.0, "d": null}"#,
            r#"{"a": 1, "a": 2, "d": {"v": 10}}"#,
            r#"{"a": 1, "d": {"v": 10, "v": 20}}"#,
            r#"{}"#,
            r#"[1, {"a": 2}]"#,
            r#"[1, {"a": 3}]"#,
            r#""text""#,
            r#"7"#,
        ];
        for old in docs {
            for new in docs {
                let parsed = changes(
                    &serde_json::from_str(old).unwrap(),
                    &serde_json::from_str(new).unwrap(),
                );
                let text = changes_in_text(old.as_bytes(), new.as_bytes()).unwrap();
                assert_eq!(text, parsed, "{old} -> {new}");
            }
        }
        assert!(changes_in_text(br#"{"a": 1}"#, br#"{"a": 1"#).is_err());
        assert!(changes_in_text(br#"{"a": [1,]}"#, br#"{"a": 2}"#).is_err());
    }
}
