//! Reading pages without building JSON trees: slices of the page text, found by one pass of
//! our own over each page ([`scan_page`]) or, where that pass declines, with sonic-rs.

use std::borrow::Cow;
use std::ops::Range;

use sonic_rs::JsonValueTrait;

/// A page nested deeper than this is refused before any parser sees it (a parser that
/// recurses would overflow its stack on a hostile page).
pub const MAX_PAGE_DEPTH: usize = 512;
/// A record nested deeper than this is more than the diff handles: its stored version is kept.
pub const MAX_RECORD_DEPTH: usize = 100;

/// How deeply `json` nests arrays and objects, without parsing it. Strings are skipped eight
/// bytes at a time (they are most of a page's bytes), so this costs far less than a parse.
pub fn nesting_depth(json: &[u8]) -> usize {
    page_shape(json).depth
}

/// What one pass over a page finds without parsing it: how deeply it nests, where the
/// array under its top-level `"value"` key lies (an OData page's records), and — when asked
/// for ([`scan_page`]) — where each of its records lies and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    /// How deeply the page nests, not counting the inside of records skipped as stored
    /// (those nest no deeper than [`MAX_RECORD_DEPTH`]).
    pub depth: usize,
    pub value: Option<Range<usize>>,
    /// The records of the `value` array, if asked for and if the array holds objects only,
    /// in well-formed order (`[{…}, {…}]`). `None` leaves them to a parser, which says what
    /// is wrong.
    pub items: Option<Vec<Item>>,
}

/// One record of a page, as byte ranges of the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub span: Range<usize>,
    /// The text of the record's first top-level id key, if it is a non-empty string without
    /// escapes (otherwise the id is left to [`record_id`]).
    pub id: Option<Range<usize>>,
    /// The record is byte for byte the stored one, and [`Records::unchanged`] has taken it.
    pub taken: bool,
}

/// Of a record's id and the page from where the record starts: if the page holds the stored
/// record there, takes it as seen and unchanged and says how many bytes it has.
pub type Unchanged<'a> = &'a mut dyn FnMut(&str, &[u8]) -> Option<usize>;

/// What [`scan_page`] looks for in each record.
pub struct Records<'a> {
    /// The key whose string value is the record's id (`"id"`).
    pub id_key: &'a [u8],
    /// Asked of each record as soon as its id is read: the inside of a stored record is
    /// not scanned.
    pub unchanged: Unchanged<'a>,
}

pub fn page_shape(json: &[u8]) -> Shape {
    scan(json, None)
}

/// [`page_shape`], and the records of the `value` array with their ids: one pass. A record
/// that is the stored one is hashed instead of scanned (an unchanged record was checked
/// when it was stored; any other record is parsed in full later, which checks it).
pub fn scan_page(json: &[u8], records: Records<'_>) -> Shape {
    scan(json, Some(records))
}

/// Where the next `"` or `\\` of the 8 bytes of `w` is: a bit set in the top of each such
/// byte (exact, no false positives).
#[inline(always)]
fn quote_or_backslash(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let zero = |x: u64| !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7);
    zero(w ^ (ONES * u64::from(b'"'))) | zero(w ^ (ONES * u64::from(b'\\')))
}

/// The closing quote of the string whose text starts at `from`, and whether it has escapes.
#[inline(always)]
fn string_end(json: &[u8], from: usize) -> Option<(usize, bool)> {
    let (mut j, mut escaped) = (from, false);
    loop {
        // Eight bytes at a time: most strings of a page are short keys and ids.
        let k = loop {
            match json.get(j..j + 8) {
                Some(chunk) => {
                    let found =
                        quote_or_backslash(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
                    if found != 0 {
                        break j + (found.trailing_zeros() / 8) as usize;
                    }
                    j += 8;
                }
                None => break j + memchr::memchr2(b'"', b'\\', json.get(j..)?)?,
            }
        };
        if json[k] == b'\\' {
            escaped = true;
            j = k + 2;
        } else {
            return Some((k, escaped));
        }
    }
}

/// Where the `value` array's parser is, between its records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Between {
    /// After `[`: a record or `]`.
    Start,
    /// After `,`: a record.
    Comma,
    /// After a record: `,` or `]`.
    Record,
}

fn scan(json: &[u8], mut records: Option<Records<'_>>) -> Shape {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    // The last string that ended at depth 1 (a key, if a ':' follows), and the value array.
    let mut key: Option<(usize, usize)> = None;
    let (mut start, mut value): (Option<usize>, Option<Range<usize>>) = (None, None);
    let mut items = Vec::new();
    let mut items_ok = records.is_some();
    let mut between = Between::Start;
    // Within the record being read (depth 3): where it starts, whether the next string is a
    // key, whether the last key was the id key, the id, and whether the id is settled.
    let mut item_start = 0;
    let (mut expect_key, mut id_next, mut id_settled) = (false, false, false);
    let mut id: Option<Range<usize>> = None;
    let unterminated = |deepest| Shape {
        depth: deepest,
        value: None,
        items: None,
    };
    while i < json.len() {
        let in_value = start.is_some();
        match json[i] {
            b'"' => {
                let Some((end, escaped)) = string_end(json, i + 1) else {
                    return unterminated(deepest);
                };
                if depth == 1 {
                    key = Some((i + 1, end));
                } else if in_value && depth == 2 {
                    items_ok = false;
                } else if in_value && depth == 3 && !id_settled {
                    if let (true, Some(r)) = (expect_key, &records) {
                        // A key spelled with escapes may be the id key: leave it to a parser.
                        id_settled = escaped;
                        id_next = !escaped && &json[i + 1..end] == r.id_key;
                    } else if id_next {
                        id_settled = true;
                        if !escaped && end > i + 1 {
                            id = Some(i + 1..end);
                            let taken = match (std::str::from_utf8(&json[i + 1..end]), &mut records)
                            {
                                (Ok(text), Some(r)) => (r.unchanged)(text, &json[item_start..]),
                                _ => None,
                            };
                            if let Some(len) = taken {
                                let span = item_start..item_start + len;
                                i = span.end;
                                items.push(Item {
                                    span,
                                    id: id.take(),
                                    taken: true,
                                });
                                depth = 2;
                                between = Between::Record;
                                continue;
                            }
                        }
                    }
                }
                i = end;
            }
            open @ (b'[' | b'{') => {
                if in_value && depth == 2 {
                    if open == b'{' && between != Between::Record {
                        item_start = i;
                        (expect_key, id_next, id_settled, id) = (true, false, false, None);
                    } else {
                        items_ok = false;
                    }
                } else if open == b'[' && depth == 1 && value.is_none() {
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
                if let Some(from) = start.filter(|_| depth == 2) {
                    // Only `]` closes the array; a `}` here is left to a parser to name.
                    if close == b']' {
                        items_ok &= between != Between::Comma;
                        value = Some(from..i + 1);
                        start = None;
                    } else {
                        items_ok = false;
                    }
                } else if in_value && depth == 3 && items_ok {
                    items.push(Item {
                        span: item_start..i + 1,
                        id: id.take(),
                        taken: false,
                    });
                    between = Between::Record;
                }
                depth = depth.saturating_sub(1);
            }
            b',' if in_value => {
                if depth == 2 {
                    items_ok &= between == Between::Record;
                    between = Between::Comma;
                } else if depth == 3 {
                    expect_key = true;
                }
            }
            b':' if in_value && depth == 3 => {
                expect_key = false;
                if id_next && !id_settled {
                    // The id is read only if it is a string (this settles it otherwise).
                    let after = json[i + 1..].iter().find(|b| !b.is_ascii_whitespace());
                    id_settled = after != Some(&b'"');
                }
            }
            b' ' | b'\t' | b'\n' | b'\r' => {}
            _ => items_ok &= !(in_value && depth == 2),
        }
        i += 1;
    }
    Shape {
        depth: deepest,
        items: (items_ok && value.is_some()).then_some(items),
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
        // Asked of a string, `as_i64` builds (and drops) a parse error: ask only numbers.
        if v.is_number() {
            return v.as_i64().map(|n| Cow::Owned(n.to_string()));
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

    /// The records and ids a parser finds in the page's `value` array.
    fn parsed(page: &[u8]) -> Vec<(String, Option<String>)> {
        let value = page_shape(page).value.expect("a value array");
        sonic_rs::to_array_iter(&page[value])
            .map(|item| {
                let raw = item.unwrap().as_raw_str().to_string();
                let id = record_id(&raw, &["id"]).map(|id| id.into_owned());
                (raw, id)
            })
            .collect()
    }

    /// What `scan_page` found, read the way the Referrals source reads it.
    fn scanned(page: &[u8], unchanged: Unchanged<'_>) -> Option<Vec<(String, Option<String>)>> {
        let shape = scan_page(
            page,
            Records {
                id_key: b"id",
                unchanged,
            },
        );
        let text = std::str::from_utf8(page).unwrap();
        Some(
            shape
                .items?
                .into_iter()
                .map(|item| {
                    let raw = text[item.span].to_string();
                    let id = match item.id {
                        Some(id) => Some(text[id].to_string()),
                        None => record_id(&raw, &["id"]).map(|id| id.into_owned()),
                    };
                    (raw, id)
                })
                .collect(),
        )
    }

    #[test]
    fn a_scan_finds_the_records_and_ids_a_parser_finds() {
        let mut nothing_stored = |_: &str, _: &[u8]| None;
        let records = [
            r#"{"id":"a-1","x":[{"id":"inner"}]}"#,
            r#"{ "name" : "n", "id" : "late" }"#,
            r#"{"i\u0064":"escaped-key","id":"plain"}"#,
            r#"{"id":"esc\"aped"}"#,
            r#"{"id":42}"#,
            r#"{"id":""}"#,
            r#"{"id":{"nested":1}}"#,
            r#"{"other":"x"}"#,
            r#"{"a":"]}","id":"brackets-in-strings"}"#,
            r#"{"id":"first","id":"second"}"#,
            "{}",
        ];
        let mut seed = 11u64;
        for _ in 0..2_000 {
            let mut page = String::from(r#"{"@odata.count": 3, "value": ["#);
            let n = (seed % 6) as usize;
            for k in 0..n {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if k > 0 {
                    page.push_str([",", " , ", ",\n"][(seed >> 40) as usize % 3]);
                }
                page.push_str(records[(seed >> 33) as usize % records.len()]);
            }
            page.push_str(r#"], "@odata.nextLink": "https://x/?$skiptoken=1"}"#);
            seed = seed.wrapping_add(1);
            assert_eq!(
                scanned(page.as_bytes(), &mut nothing_stored).as_ref(),
                Some(&parsed(page.as_bytes())),
                "{page}"
            );
        }
    }

    #[test]
    fn a_stored_record_is_hashed_not_scanned_and_anything_else_is_scanned() {
        let page = br#"{"value":[{"id":"same","deep":[[["x"]]]},{"id":"changed","v":2},{"id":"long","v":1}]}"#;
        // What a store holding "same" as it is and "changed" as it was would say.
        let mut asked = Vec::new();
        let mut unchanged = |id: &str, from: &[u8]| {
            asked.push(id.to_string());
            let stored: &[u8] = match id {
                "same" => br#"{"id":"same","deep":[[["x"]]]}"#,
                "changed" => br#"{"id":"changed","v":1}"#,
                _ => return None,
            };
            from.starts_with(stored).then_some(stored.len())
        };
        let shape = scan_page(
            page,
            Records {
                id_key: b"id",
                unchanged: &mut unchanged,
            },
        );
        let items = shape.items.unwrap();
        assert_eq!(items.len(), 3);
        assert!(items[0].taken);
        assert!(!items[1].taken && !items[2].taken);
        // The inside of the stored record was not walked: its nesting is not counted.
        assert_eq!(shape.depth, 3);
        assert_eq!(page_shape(page).depth, 6);
        assert_eq!(scanned(page, &mut unchanged), Some(parsed(page)));
        assert_eq!(
            asked,
            ["same", "changed", "long", "same", "changed", "long"]
        );
    }

    #[test]
    fn records_out_of_order_are_left_to_a_parser() {
        let mut none = |_: &str, _: &[u8]| None;
        for page in [
            r#"{"value":[{"id":"a"} {"id":"b"}]}"#,
            r#"{"value":[{"id":"a"},]}"#,
            r#"{"value":[,{"id":"a"}]}"#,
            r#"{"value":[{"id":"a"},"text"]}"#,
            r#"{"value":[{"id":"a"},7]}"#,
            r#"{"value":[{"id":"a"}}]}"#,
            r#"{"value":[[1]]}"#,
            r#"{"value":[{"id":"a"}"#,
        ] {
            assert_eq!(scanned(page.as_bytes(), &mut none), None, "{page}");
        }
        assert_eq!(scanned(br#"{"value":[ ]}"#, &mut none), Some(Vec::new()));
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
