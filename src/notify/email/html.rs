//! The HTML of an email built from text: every character of the text is escaped, so customer
//! text can never become markup (DESIGN §6, guarantee 7).

use crate::notify::text::{fact_line, html_escape, BREAK};

/// An email body: the text, escaped, as paragraphs.
pub fn html_from_text(title: &str, rest: &str) -> String {
    html_with_link(title, rest, None)
}

/// [`html_from_text`] with a button-like "Open in Partner Center" link to `link`. A run of
/// `Label: value` lines is a table of facts; a value's own line breaks ([`BREAK`]) are `<br>`.
pub fn html_with_link(title: &str, rest: &str, link: Option<&str>) -> String {
    let escape = |s: &str| html_escape(s.trim()).replace(['\n', BREAK], "<br>");
    let paragraph = |lines: &mut Vec<String>, out: &mut String| {
        if !lines.is_empty() {
            out.push_str(&format!(
                "<p style=\"margin:0 0 12px 0\">{}</p>",
                std::mem::take(lines).join("<br>")
            ));
        }
    };
    let table = |facts: &mut String, out: &mut String| {
        if !facts.is_empty() {
            out.push_str(&format!(
                "<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" style=\"margin:0 0 12px 0;font-size:14px\">{}</table>",
                std::mem::take(facts)
            ));
        }
    };
    let mut paragraphs = String::new();
    for p in rest.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let (mut facts, mut lines) = (String::new(), Vec::new());
        for line in p.lines() {
            match fact_line(line) {
                Some((label, value)) => {
                    paragraph(&mut lines, &mut paragraphs);
                    facts.push_str(&format!(
                        "<tr><td style=\"color:#57606a;padding:2px 16px 2px 0;vertical-align:top;white-space:nowrap\">{}</td><td style=\"padding:2px 0;overflow-wrap:anywhere\">{}</td></tr>",
                        html_escape(label),
                        escape(value)
                    ));
                }
                None => {
                    table(&mut facts, &mut paragraphs);
                    lines.push(escape(line));
                }
            }
        }
        table(&mut facts, &mut paragraphs);
        paragraph(&mut lines, &mut paragraphs);
    }
    let button = link.map_or(String::new(), |url| {
        format!(
            "<p style=\"margin:16px 0\"><a href=\"{}\" style=\"display:inline-block;padding:10px 18px;background:#0f6cbd;color:#ffffff;text-decoration:none;border-radius:4px;font-weight:600\">{}</a></p>",
            html_escape(url),
            crate::notify::OPEN_IN_PARTNER_CENTER
        )
    });
    format!(
        "<!DOCTYPE html><html><head><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head><body style=\"font-family:Segoe UI,Arial,sans-serif;font-size:14px;color:#222;max-width:640px\"><h2 style=\"font-size:18px;margin:0 0 12px 0\">{}</h2>{paragraphs}{button}<p style=\"color:#888;font-size:12px\">Sent by partnerwatch</p></body></html>",
        html_escape(title)
    )
}
