//! Reading pages without building JSON trees: slices of the page text, found with sonic-rs.

use std::borrow::Cow;

use sonic_rs::JsonValueTrait;

/// A page nested deeper than this is refused before any parser sees it (a parser that
/// recurses would overflow its stack on a hostile page).
pub const MAX_PAGE_DEPTH: usize = 512;
/// A record nested deeper than this is more than the diff handles: its stored version is kept.
pub const MAX_RECORD_DEPTH: usize = 100;

/// How deeply `json` nests arrays and objects, without parsing it. Strings are skipped with
/// `memchr` (they are most of a page's bytes), so this costs far less than a parse.
pub fn nesting_depth(json: &[u8]) -> usize {
    page_shape(json).depth
}

/// What one pass over a page finds without parsing it: how deeply it nests, and where the
/// array under its top-level `"value"` key lies (an OData page's records), so the records
/// need not be skipped over once to find the rest of the page and again to read them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub depth: usize,
    pub value: Option<std::ops::Range<usize>>,
}

pub fn page_shape(json: &[u8]) -> Shape {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    // The last string that ended at depth 1 (a key, if a ':' follows), and the value array.
    let mut key: Option<(usize, usize)> = None;
    let (mut start, mut value) = (None, None);
    while i < json.len() {
        match json[i] {
            b'"' => {
                // To the closing quote: past every backslash and the byte it escapes.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &json[j.min(json.len())..]) {
                        None => {
                            return Shape {
                                depth: deepest,
                                value: None,
                            }
                        }
                        Some(k) if json[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            if depth == 1 {
                                key = Some((i + 1, j + k));
                            }
                            i = j + k;
                            break;
                        }
                    }
                }
            }
            open @ (b'[' | b'{') => {
                if open == b'[' && depth == 1 && start.is_none() && value.is_none() {
                    let keyed = key.is_some_and(|(from, to)| {
                        &json[from..to] == b"value"
                            && json[to + 1..i]
                                .iter()
                                .filter(|b| !b.is_ascii_whitespace())
                                .eq([b':'].iter())
                    });
                    if keyed {
                        start = Some(i);
                    }
                }
                depth += 1;
                deepest = deepest.max(depth);
            }
            close @ (b']' | b'}') => {
                if close == b']' && depth == 2 {
                    if let Some(from) = start.take() {
                        value = Some(from..i + 1);
                    }
                }
                depth = depth.saturating_sub(1);
            }
            _ => {}
        }
        i += 1;
    }
    Shape {
        depth: deepest,
        value,
    }
}

/// `part` as a slice of `whole`, if it lies inside it (it does for borrowed input).
pub fn within<'a>(whole: &'a [u8], part: &str) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let bytes = whole.get(start..start + part.len())?;
    std::str::from_utf8(bytes).ok()
}

/// A record's key — the first of `keys` present as a non-empty string or number — read
/// without parsing the record; borrowed from the page unless it has escapes.
pub fn record_id<'a>(raw: &'a str, keys: &[&str]) -> Option<Cow<'a, str>> {
    keys.iter().find_map(|key| {
        let v = sonic_rs::get(raw, [key]).ok()?;
        if let Some(n) = v.as_i64() {
            return Some(Cow::Owned(n.to_string()));
        }
        let id = v.as_str().filter(|s| !s.is_empty())?;
        Some(match within(raw.as_bytes(), id) {
            Some(borrowed) => Cow::Borrowed(borrowed),
            None => Cow::Owned(id.to_string()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings() {
        assert_eq!(nesting_depth(br#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(nesting_depth(br#"{"a":"[[[[\"]]"}"#), 1);
        assert_eq!(nesting_depth(b"1"), 0);
        assert_eq!(nesting_depth(br#"["\\", [{"a\"]]": [1]}]]"#), 4);
        assert_eq!(nesting_depth(br#"[["unterminated \"#), 2);
        // The same as counting byte by byte, outside strings, on anything.
        let slow = |json: &[u8]| {
            let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
            for &b in json {
                if in_string {
                    match b {
                        _ if escaped => escaped = false,
                        b'\\' => escaped = true,
                        b'"' => in_string = false,
                        _ => {}
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'[' | b'{' => {
                        depth += 1;
                        deepest = deepest.max(depth);
                    }
                    b']' | b'}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            deepest
        };
        // Where the records are, whatever else the page holds and in any order.
        let page = br#"{"@odata.count": 2, "x": {"value": [9]}, "value" : [{"a": "]"}, [1]], "@odata.nextLink": "n"}"#;
        let shape = page_shape(page);
        assert_eq!(shape.depth, 3);
        assert_eq!(
            &page[shape.value.unwrap()],
            br#"[{"a": "]"}, [1]]"#.as_slice()
        );
        assert_eq!(page_shape(br#"{"values": [1], "v": "value"}"#).value, None);
        assert_eq!(page_shape(br#"{"value": 3}"#).value, None);
        let alphabet = br#"[]{}"\a"#;
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let len = (seed % 24) as usize;
            let sample: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    alphabet[(seed >> 33) as usize % alphabet.len()]
                })
                .collect();
            assert_eq!(
                nesting_depth(&sample),
                slow(&sample),
                "{:?}",
                String::from_utf8_lossy(&sample)
            );
        }
    }

    #[test]
    fn ids_in_any_listed_spelling() {
        assert_eq!(
            record_id(r#"{"tenantID":"t-1","x":2}"#, &["tenantId", "tenantID"]).as_deref(),
            Some("t-1")
        );
        assert_eq!(
            record_id(r#"{"claimID":42}"#, &["claimID"]).as_deref(),
            Some("42")
        );
        assert_eq!(record_id(r#"{"id":""}"#, &["id"]), None);
        assert!(matches!(
            record_id(r#"{"id":"abc"}"#, &["id"]),
            Some(Cow::Borrowed("abc"))
        ));
    }
}
