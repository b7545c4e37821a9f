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
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < json.len() {
        match json[i] {
            b'"' => {
                // To the closing quote: past every backslash and the byte it escapes.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &json[j.min(json.len())..]) {
                        None => return deepest,
                        Some(k) if json[j + k] == b'\\' => j += k + 2,
                        Some(k) => {
                            i = j + k;
                            break;
                        }
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
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
