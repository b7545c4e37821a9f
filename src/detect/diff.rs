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
}
