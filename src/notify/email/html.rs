//! The HTML of an email built from text: every character of the text is escaped, so customer
//! text can never become markup (DESIGN §6, guarantee 7).

use crate::notify::text::html_escape;

/// An email body: the text, escaped, as paragraphs.
pub fn html_from_text(title: &str, rest: &str) -> String {
    let paragraphs: String = rest
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            format!(
                "<p style=\"margin:0 0 12px 0\">{}</p>",
                html_escape(p.trim()).replace('\n', "<br>")
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html><html><body style=\"font-family:Segoe UI,Arial,sans-serif;font-size:14px;color:#222\"><h2 style=\"font-size:18px;margin:0 0 12px 0\">{}</h2>{paragraphs}<p style=\"color:#888;font-size:12px\">Sent by partnerwatch</p></body></html>",
        html_escape(title)
    )
}
