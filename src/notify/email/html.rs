//! The HTML of an email built from text: every character of the text is escaped, so customer
//! text can never become markup (DESIGN §6, guarantee 7).

use crate::notify::text::html_escape;

/// An email body: the text, escaped, as paragraphs.
pub fn html_from_text(title: &str, rest: &str) -> String {
    html_with_link(title, rest, None)
}

/// [`html_from_text`] with a button-like "Open in Partner Center" link to `link`.
pub fn html_with_link(title: &str, rest: &str, link: Option<&str>) -> String {
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
