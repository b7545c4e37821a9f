//! What went wrong in a template, in the words of the person who wrote it: the field that does
//! not exist and the nearest one that does, the helper that does not exist and those that do,
//! the `{{` that is never closed — never the parser's grammar rules or Rust debug text.

use handlebars::{RenderError, RenderErrorReason, TemplateError};
use serde_json::Value;

/// The helpers partnerwatch adds, with how they are called.
pub const HELPERS: &[(&str, &str)] = &[
    ("date", "{{date record.createdDateTime}}"),
    ("relative", "{{relative data.deadline detected_at}}"),
    ("left", "{{left data.deadline detected_at}}"),
    (
        "money",
        "{{money record.details.dealValue record.details.currency}}",
    ),
    ("json", "{{json record.details}}"),
    ("field", "{{field this.path}}"),
    ("number", "{{number record.licensedMau}}"),
];

/// The helpers handlebars has built in.
const BUILT_IN: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "log", "eq", "ne", "gt", "gte", "lt", "lte", "and",
    "or", "not", "len",
];

/// One line that names every helper, for messages.
pub fn helper_list() -> String {
    let ours: Vec<&str> = HELPERS.iter().map(|(n, _)| *n).collect();
    format!(
        "helpers: {} (e.g. {}); built in: {}",
        ours.join(", "),
        HELPERS[0].1,
        BUILT_IN.join(", ")
    )
}

/// The nearest of `candidates` to `wanted`, if it is near enough to be a likely typo.
fn nearest<'a>(wanted: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = wanted.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(&wanted, &c.to_lowercase()), c))
        .filter(|(d, c)| *d <= (wanted.len().max(c.len()) / 3).max(2))
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c)
}

/// Every field path of `data` (`record.customerProfile.name`; the first element of an array
/// stands for all of them, as `record.team.[0].email`).
fn paths(data: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>, depth: usize) {
        if depth > 8 {
            return;
        }
        match v {
            Value::Object(map) => {
                for (k, child) in map {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    out.push(path.clone());
                    walk(child, &path, out, depth + 1);
                }
            }
            Value::Array(items) => {
                if let Some(first) = items.first() {
                    walk(first, &format!("{prefix}.[0]"), out, depth + 1);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(data, "", &mut out, 0);
    out
}

/// A failure while rendering, explained.
pub fn render_error(e: &RenderError, data: &Value) -> String {
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => {
            let what = match data.get("kind").and_then(Value::as_str) {
                Some(kind) => format!("a {kind} event"),
                None => "this message's data".to_string(),
            };
            let all = paths(data);
            // Inside `{{#each}}` or `{{#with}}` a path is relative: compare the ends too.
            let wanted = path.trim_start_matches("this.");
            let hint = nearest(wanted, all.iter().map(String::as_str)).or_else(|| {
                let tail = wanted.rsplit('.').next().unwrap_or(wanted);
                nearest(
                    tail,
                    all.iter()
                        .map(|p| p.rsplit('.').next().unwrap_or(p.as_str())),
                )
            });
            match hint {
                Some(h) => format!("`{path}` is not a field of {what}; did you mean `{h}`? (to make a field optional, wrap it in {{{{#if {h}}}}}…{{{{/if}}}})"),
                None => {
                    let top: Vec<&str> = data
                        .as_object()
                        .map(|m| m.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    format!("`{path}` is not a field of {what} (its fields start with: {})", top.join(", "))
                }
            }
        }
        RenderErrorReason::MissingVariable(None) => {
            "a field this template uses is missing from the data".to_string()
        }
        RenderErrorReason::HelperNotFound(name) => {
            let all = HELPERS
                .iter()
                .map(|(n, _)| *n)
                .chain(BUILT_IN.iter().copied());
            let hint = nearest(name, all)
                .map(|h| format!("did you mean `{h}`? "))
                .unwrap_or_default();
            format!("there is no helper `{name}`; {hint}{}", helper_list())
        }
        RenderErrorReason::ParamNotFoundForIndex(helper, i) => {
            let usage = HELPERS
                .iter()
                .find(|(n, _)| n == helper)
                .map(|(_, u)| format!(": write it as {u}"))
                .unwrap_or_default();
            format!("`{helper}` needs a value as parameter {}{usage}", i + 1)
        }
        other => other.to_string(),
    }
}

/// A template that does not parse: where (line, column) and what to fix.
pub fn syntax_error(e: &TemplateError, text: &str) -> (usize, usize, String) {
    if let Some(found) = scan(text) {
        return found;
    }
    let (line, column) = e.pos().unwrap_or((1, 1));
    let reason = e.reason().to_string();
    // The parser's own words end in a list of its grammar rules ("expected escape, expression,
    // html_expression, …"), which say nothing to the person who wrote the template.
    let said = match reason.split_once(": expected") {
        Some((head, _)) => head.to_string(),
        None if reason.contains("expected ") => "invalid handlebars syntax".to_string(),
        None => reason,
    };
    let near = text
        .lines()
        .nth(line.saturating_sub(1))
        .map(|l| {
            let l = l.trim();
            let shown: String = l.chars().take(60).collect();
            format!(" near `{shown}`")
        })
        .unwrap_or_default();
    (
        line,
        column,
        format!("{said}{near}: every {{{{ needs its }}}}, every {{{{#block}}}} its {{{{/block}}}}"),
    )
}

/// The line and column of byte `at` in `text`.
fn place(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The usual mistakes, found by reading the tags: a `{{` never closed, a block never closed
/// or closed by the wrong name.
fn scan(text: &str) -> Option<(usize, usize, String)> {
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut at = 0;
    while let Some(i) = text[at..].find("{{") {
        let start = at + i;
        let rest = &text[start..];
        // Comments run to their own end and may hold anything.
        if rest.starts_with("{{!--") {
            let end = rest.find("--}}")?;
            at = start + end + 4;
            continue;
        }
        let triple = rest.starts_with("{{{");
        let close = if triple { "}}}" } else { "}}" };
        let next_open = rest[2..].find("{{").map(|j| j + 2);
        let end = match rest.find(close) {
            Some(e) if next_open.is_none_or(|n| e < n) => e,
            _ => {
                let (line, column) = place(text, start);
                let tag: String = rest.chars().take(30).take_while(|c| *c != '\n').collect();
                return Some((
                    line,
                    column,
                    format!("`{tag}` is not closed: end it with `{close}`"),
                ));
            }
        };
        let inner = rest[if triple { 3 } else { 2 }..end]
            .trim_matches('~')
            .trim();
        let name = |s: &str| s.split_whitespace().next().unwrap_or("").to_string();
        if let Some(block) = inner.strip_prefix('#') {
            open.push((name(block.trim_start_matches('>')), start));
        } else if let Some(block) = inner.strip_prefix('/') {
            let closing = name(block);
            match open.pop() {
                Some((opened, _)) if opened == closing => {}
                Some((opened, where_)) => {
                    let (line, column) = place(text, start);
                    let (l2, c2) = place(text, where_);
                    return Some((
                        line,
                        column,
                        format!("`{{{{/{closing}}}}}` closes `{{{{#{opened}}}}}` (opened at line {l2}, column {c2}): close it with `{{{{/{opened}}}}}` first"),
                    ));
                }
                None => {
                    let (line, column) = place(text, start);
                    return Some((
                        line,
                        column,
                        format!("`{{{{/{closing}}}}}` closes a block that was never opened"),
                    ));
                }
            }
        }
        at = start + end + close.len();
    }
    let (opened, where_) = open.pop()?;
    let (line, column) = place(text, where_);
    Some((
        line,
        column,
        format!("`{{{{#{opened}}}}}` is never closed: add `{{{{/{opened}}}}}` where it ends"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn syntax(text: &str) -> (usize, usize, String) {
        let e = handlebars::Template::compile(text).unwrap_err();
        syntax_error(&e, text)
    }

    #[test]
    fn syntax_errors_say_what_to_close_and_where() {
        let (l, c, m) = syntax("New {{#if record.name}}x\nmore\n");
        assert_eq!((l, c), (1, 5));
        assert!(
            m.contains("`{{#if}}` is never closed: add `{{/if}}`"),
            "{m}"
        );
        let (l, c, m) = syntax("a\nNew {{record.name}\nb {{x}}");
        assert_eq!((l, c), (2, 5));
        assert!(m.contains("is not closed: end it with `}}`"), "{m}");
        let (_, _, m) = syntax("{{#each a}}{{#if b}}{{/each}}{{/if}}");
        assert!(m.contains("closes `{{#if}}`"), "{m}");
        assert!(!m.contains("expression") && !m.contains('_'), "{m}");
    }

    #[test]
    fn a_misspelt_field_names_the_nearest_real_one() {
        let data = serde_json::json!({
            "kind": "referral.new",
            "record": {"customerProfile": {"name": "Contoso"}, "details": {"notes": "x"}}
        });
        let mut h = handlebars::Handlebars::new();
        h.set_strict_mode(true);
        h.register_template_string("t", "{{record.customerProfle.name}}")
            .unwrap();
        let e = h.render("t", &data).unwrap_err();
        let m = render_error(&e, &data);
        assert!(
            m.contains("did you mean `record.customerProfile.name`"),
            "{m}"
        );
        assert!(m.contains("a referral.new event"), "{m}");
        h.register_template_string("u", "{{datee record.details.notes}}")
            .unwrap();
        let e = h.render("u", &data).unwrap_err();
        let m = render_error(&e, &data);
        assert!(m.contains("no helper `datee`; did you mean `date`"), "{m}");
        assert!(m.contains("money"), "{m}");
    }
}
