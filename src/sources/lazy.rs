//! Reading pages without building JSON trees: slices of the page text, found with sonic-rs.

use std::borrow::Cow;

use sonic_rs::JsonValueTrait;

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
