//! Message templates: handlebars in strict mode, loaded from the `templates` folder (or the
//! set shipped inside the binary). `referral_new.text.hbs` is the plain-text form of the
//! `referral_new` template and the one every template must have; `NAME.html.hbs` (email),
//! `NAME.telegram.hbs` and `NAME.teams.hbs` (an Adaptive Card) are optional richer forms.
//! Where a channel's form is missing, its message is built from the text form with the
//! escaping of its format, so that quotes, newlines, `<script>`, Markdown and emoji in any
//! field never break or inject into a message.
//!
//! Templates see the event as JSON: `kind`, `record`, `previous`, `changes`, `data`,
//! `entity_id`, `detected_at`; helpers: `date`, `relative`, `money`, `json`.
//! Must never: fail to produce a message at delivery time — see [`Templates::render_or_fallback`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderErrorReason,
};
use serde_json::Value;

use crate::config::{ConfigError, Located};
pub use crate::model::Format;
use crate::model::{Body, Event, Message};
use crate::notify::message_from_text;
use crate::notify::teams::card::{card_size, TEAMS_CARD_LIMIT};
use crate::notify::text::html_escape;

pub mod explain;

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    /// Plain text (no escaping).
    text: Handlebars<'static>,
    /// HTML and Telegram HTML (HTML escaping).
    html: Handlebars<'static>,
    /// Adaptive Card JSON (JSON string escaping).
    json: Handlebars<'static>,
    names: BTreeSet<String>,
    origin: PathBuf,
    /// Where "Open in Partner Center" points for a referral's messages.
    links: crate::config::LinksConfig,
}

fn registry(escape: fn(&str) -> String, tz: &jiff::tz::TimeZone) -> Handlebars<'static> {
    let mut h = Handlebars::new();
    h.set_strict_mode(true);
    h.register_escape_fn(escape);
    helpers::register(&mut h, tz.clone());
    h
}

/// Escapes text for the inside of a JSON string.
pub fn json_escape(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("strings serialize");
    quoted[1..quoted.len() - 1].to_string()
}

impl Templates {
    fn empty(origin: PathBuf, tz: &jiff::tz::TimeZone) -> Self {
        Self {
            // A value's line breaks are marked, so that the template's own lines alone make
            // the message's structure (title, facts).
            text: registry(crate::notify::text::mark_breaks, tz),
            html: registry(html_escape, tz),
            json: registry(json_escape, tz),
            names: BTreeSet::new(),
            origin,
            links: crate::config::LinksConfig::default(),
        }
    }

    /// Points the "Open in Partner Center" button of referral messages at `links`.
    pub fn with_links(mut self, links: crate::config::LinksConfig) -> Self {
        self.links = links;
        self
    }

    /// Loads every `NAME.FORMAT.hbs` file of `dir`.
    pub fn load_dir(dir: &Path, tz: &jiff::tz::TimeZone) -> Result<Templates, ConfigError> {
        Self::load_dir_with(dir, tz, Vec::new())
    }

    /// Loads `dir`, plus each of `defaults` whose template name (`NAME`) has no file there:
    /// a folder that overrides a shipped template overrides all its formats.
    pub fn load_dir_with(
        dir: &Path,
        tz: &jiff::tz::TimeZone,
        defaults: Vec<(PathBuf, String)>,
    ) -> Result<Templates, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|error| ConfigError::Read {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hbs"))
            .collect();
        files.sort();
        let name_of = |p: &Path| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('.').next())
                .unwrap_or_default()
                .to_string()
        };
        let own: BTreeSet<String> = files.iter().map(|p| name_of(p)).collect();
        let mut sources = files
            .into_iter()
            .map(|path| crate::config::read_file(&path).map(|text| (path, text)))
            .collect::<Result<Vec<_>, _>>()?;
        sources.extend(
            defaults
                .into_iter()
                .filter(|(path, _)| !own.contains(&name_of(path))),
        );
        Self::from_sources(dir, sources, tz)
    }

    /// Builds templates from (file name, text) pairs.
    pub fn from_sources(
        origin: &Path,
        sources: impl IntoIterator<Item = (PathBuf, String)>,
        tz: &jiff::tz::TimeZone,
    ) -> Result<Templates, ConfigError> {
        let mut t = Self::empty(origin.to_path_buf(), tz);
        let mut errors = Vec::new();
        for (path, text) in sources {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(stem) = file_name.strip_suffix(".hbs") else {
                continue;
            };
            let at_start = |message: String| Located {
                file: path.clone(),
                line: 1,
                column: 1,
                message,
            };
            let Some((name, format)) = stem.rsplit_once('.') else {
                errors.push(at_start(format!(
                    "template file names are NAME.FORMAT.hbs (e.g. referral_new.text.hbs), not {file_name:?}"
                )));
                continue;
            };
            let Some(format) = Format::parse(format) else {
                errors.push(at_start(format!(
                    "unknown template format {format:?}: use text, html, telegram or teams"
                )));
                continue;
            };
            let registry = match format {
                Format::Text => &mut t.text,
                Format::Html | Format::Telegram => &mut t.html,
                Format::Teams => &mut t.json,
            };
            // The template parser recurses per nested block: a template nested absurdly deep
            // is refused before it sees it.
            if let Some((line, column)) = too_deep(&text) {
                errors.push(Located {
                    file: path.clone(),
                    line,
                    column,
                    message: format!(
                        "blocks nested more than {MAX_BLOCK_DEPTH} deep; flatten the template"
                    ),
                });
                continue;
            }
            if let Err(e) = registry.register_template_string(stem, &text) {
                let (line, column, message) = explain::syntax_error(&e, &text);
                errors.push(Located {
                    file: path.clone(),
                    line: line as u64,
                    column: column as u64,
                    message,
                });
                continue;
            }
            if format == Format::Text {
                t.names.insert(name.to_string());
            }
        }
        for name in t
            .html
            .get_templates()
            .keys()
            .chain(t.json.get_templates().keys())
        {
            let base = name.rsplit_once('.').map_or(name.as_str(), |(b, _)| b);
            if !t.names.contains(base) {
                errors.push(Located {
                    file: origin.join(format!("{name}.hbs")),
                    line: 1,
                    column: 1,
                    message: format!("{name}.hbs has no {base}.text.hbs beside it: every template needs a text form"),
                });
            }
        }
        match errors.len() {
            0 => Ok(t),
            1 => Err(ConfigError::At(errors.remove(0))),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    /// Where the templates came from, for messages.
    pub fn origin(&self) -> &Path {
        &self.origin
    }

    /// Whether `name` exists (its text form; the other forms derive from it if missing).
    pub fn has(&self, name: &str) -> bool {
        self.names.contains(name)
    }

    /// Template names (without format).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Renders `key` with `data`; a failure says where (the template file, line and column)
    /// and what to fix in words: the field that does not exist and the nearest one that does,
    /// or the helper that does not exist and those that do.
    fn render_in(
        &self,
        registry: &Handlebars<'static>,
        key: &str,
        data: &impl serde::Serialize,
    ) -> Result<String, String> {
        registry.render(key, data).map_err(|e| {
            let place = format!(
                "{}:{}:{}",
                self.origin.join(format!("{key}.hbs")).display(),
                e.line_no.unwrap_or(1),
                e.column_no.unwrap_or(1)
            );
            let data = serde_json::to_value(data).unwrap_or(Value::Null);
            format!("{place}: {}", explain::render_error(&e, &data))
        })
    }

    /// Renders the template `name.FORMAT` with any data (a digest); `None` if there is no
    /// template in that format.
    pub fn render_data(
        &self,
        name: &str,
        format: Format,
        data: &impl serde::Serialize,
    ) -> Result<Option<String>, String> {
        let key = format!("{name}.{}", format.suffix());
        let registry = match format {
            Format::Text => &self.text,
            Format::Html | Format::Telegram => &self.html,
            Format::Teams => &self.json,
        };
        if !registry.has_template(&key) {
            return Ok(None);
        }
        self.render_in(registry, &key, data).map(Some)
    }

    /// Renders `name` in `format` for `event`. A format without a template of its own is
    /// built from the text form by the channel's markup ([`message_from_text`]).
    pub fn render(&self, name: &str, format: Format, event: &Event) -> Result<Message, String> {
        let marked = self.render_in(&self.text, &format!("{name}.text"), event)?;
        let (title, rest) = split_title(&marked, event);
        // The plain text as the template lays it out: the title as one line, the values'
        // own line breaks restored below it.
        let text = match marked.split_once('\n') {
            Some((first, below)) => format!(
                "{}\n{}",
                crate::notify::text::fold_breaks(first),
                crate::notify::text::unmark_breaks(below)
            ),
            None => crate::notify::text::fold_breaks(&marked),
        };
        // A referral's message opens it in Partner Center (a link partnerwatch builds from
        // `links.referral`, never one found in the record).
        let link = event
            .kind
            .as_str()
            .starts_with("referral.")
            .then(|| self.links.referral(&event.entity_id));
        // The plain text ends with the address, for channels without buttons.
        let text = match &link {
            Some(url) => format!(
                "{}\n\n{}: {url}\n",
                text.trim_end(),
                crate::notify::OPEN_IN_PARTNER_CENTER
            ),
            None => text,
        };
        let own = format!("{name}.{}", format.suffix());
        let body = match format {
            Format::Text => Some(Body::Text { text: text.clone() }),
            Format::Html if self.html.has_template(&own) => Some(Body::Html {
                html: self.render_in(&self.html, &own, event)?,
                text: text.clone(),
            }),
            Format::Telegram if self.html.has_template(&own) => Some(Body::Telegram {
                html: self.render_in(&self.html, &own, event)?,
            }),
            Format::Teams if self.json.has_template(&own) => {
                let raw = self.render_in(&self.json, &own, event)?;
                let card = serde_json::from_str::<serde_json::Value>(&raw)
                    .map_err(|e| format!("template {own}: the card is not JSON: {e}"))?;
                // A card of its own that Teams would refuse falls back to the generic one.
                (card_size(&card) <= TEAMS_CARD_LIMIT).then_some(Body::Teams { card })
            }
            _ => None,
        };
        let mut message = match body {
            Some(body) => Message { title, body },
            None => crate::notify::message_with_link(format, &title, &rest, link.as_deref()),
        };
        // The email's plain-text part is the text template as rendered.
        if let Body::Html {
            text: alternative, ..
        } = &mut message.body
        {
            *alternative = text;
        }
        Ok(message)
    }

    /// Renders, and if the template fails on this event (a field it needs is missing), still
    /// produces a plain message that says what happened, so no notification is lost.
    pub fn render_or_fallback(&self, name: &str, format: Format, event: &Event) -> Message {
        self.render(name, format, event).unwrap_or_else(|err| {
            tracing::warn!(event = %event.id, kind = %event.kind, error = %err, "template failed; sending the fallback message");
            let title = format!("partnerwatch: {} for {}", event.kind, event.entity_id);
            let rest = format!(
                "(The template {name:?} could not render this event: {err}. Run `partnerwatch check`.)\n\n{}",
                serde_json::to_string_pretty(&event.record).unwrap_or_default()
            );
            message_from_text(format, &title, &rest)
        })
    }
}

/// How deeply `{{#…}}` blocks may nest in one template.
pub const MAX_BLOCK_DEPTH: usize = 64;

/// Where a template's blocks first nest deeper than [`MAX_BLOCK_DEPTH`] (line, column).
fn too_deep(text: &str) -> Option<(u64, u64)> {
    let mut depth = 0usize;
    for (n, line) in text.lines().enumerate() {
        let mut rest = line;
        let mut column = 0;
        while let Some(i) = rest.find("{{") {
            column += i + 2;
            let tag = rest[i + 2..].trim_start_matches('~');
            if tag.starts_with('#') {
                depth += 1;
                if depth > MAX_BLOCK_DEPTH {
                    return Some((n as u64 + 1, column as u64 - 1));
                }
            } else if tag.starts_with('/') {
                depth = depth.saturating_sub(1);
            }
            rest = &rest[i + 2..];
        }
    }
    None
}

/// The first non-empty line (the title) and the rest of a text message.
fn split_title(text: &str, event: &Event) -> (String, String) {
    let trimmed = text.trim_start();
    match trimmed.split_once('\n') {
        Some((first, rest)) if !first.trim().is_empty() => (
            crate::notify::text::fold_breaks(first.trim()),
            rest.trim().to_string(),
        ),
        _ if !trimmed.trim().is_empty() => (
            crate::notify::text::fold_breaks(trimmed.trim()),
            String::new(),
        ),
        _ => (event.kind.as_str().to_string(), String::new()),
    }
}

/// Template helpers.
pub mod helpers {
    use super::*;

    pub fn register(h: &mut Handlebars<'static>, tz: jiff::tz::TimeZone) {
        // {{date record.createdDateTime}} → "Mon 23 Nov 2026 09:00 CET" in the configured zone.
        register_text(h, "date", move |h| Ok(date(&param_str(h, 0)?, &tz)));
        // {{field this.path}} → "Details › deal value" for the JSON pointer /details/dealValue.
        register_text(h, "field", |h| Ok(field(&param_str(h, 0)?)));
        // {{relative data.deadline detected_at}} → "in 2 days" / "3 hours ago".
        register_text(h, "relative", |h| span(h, relative));
        // {{left data.deadline detected_at}} → "4 days 17 h left" / "5 h left".
        register_text(h, "left", |h| span(h, left));
        // {{number record.licensedMau}} → "3,883".
        register_text(h, "number", |h| Ok(money(&param(h, 0), "")));
        // {{money record.details.dealValue record.details.currency}} → "185,000 USD".
        register_text(h, "money", |h| {
            let currency = param(h, 1);
            Ok(money(&param(h, 0), currency.as_str().unwrap_or_default()))
        });
        // {{json value}} → the value as compact JSON.
        register_text(h, "json", |h| {
            Ok(match param(h, 0) {
                Value::String(s) => s,
                other => other.to_string(),
            })
        });
    }

    /// Registers a helper that writes `make(helper)` through the template's escaping, as
    /// `{{value}}` is written: a customer's text given to a helper is no more markup than the
    /// text itself.
    fn register_text(
        h: &mut Handlebars<'static>,
        name: &str,
        make: impl Fn(&Helper) -> Result<String, RenderErrorReason> + Send + Sync + 'static,
    ) {
        h.register_helper(
            name,
            Box::new(
                move |h: &Helper,
                      r: &Handlebars,
                      _: &Context,
                      _: &mut RenderContext,
                      out: &mut dyn Output|
                      -> HelperResult {
                    out.write(&r.get_escape_fn()(&make(h)?))?;
                    Ok(())
                },
            ),
        );
    }

    /// Parameter `i` of a helper, `null` if it has none.
    fn param(h: &Helper, i: usize) -> Value {
        h.param(i).map(|p| p.value().clone()).unwrap_or(Value::Null)
    }

    /// A timestamp in `tz`; also a date and time without an offset (Partner Center's
    /// `processedDateTime`: UTC) and a plain date. Anything else is written as it is.
    pub fn date(text: &str, tz: &jiff::tz::TimeZone) -> String {
        let at = text.parse::<jiff::Timestamp>().ok().or_else(|| {
            text.parse::<jiff::civil::DateTime>()
                .ok()
                .and_then(|d| d.to_zoned(jiff::tz::TimeZone::UTC).ok())
                .map(|z| z.timestamp())
        });
        match (at, text.parse::<jiff::civil::Date>()) {
            (Some(t), _) => t
                .to_zoned(tz.clone())
                .strftime("%a %d %b %Y %H:%M %Z")
                .to_string(),
            (None, Ok(d)) => d.strftime("%a %d %b %Y").to_string(),
            (None, Err(_)) => text.to_string(),
        }
    }

    /// `show(when - now)` of a helper's two timestamps (`when`, `now`); a value that is not a
    /// timestamp is written as it is.
    fn span(
        h: &Helper,
        show: fn(jiff::SignedDuration) -> String,
    ) -> Result<String, RenderErrorReason> {
        let (when, now) = (param_str(h, 0)?, param_str(h, 1)?);
        Ok(
            match (
                when.parse::<jiff::Timestamp>(),
                now.parse::<jiff::Timestamp>(),
            ) {
                (Ok(w), Ok(n)) => show(w.duration_since(n)),
                _ => when,
            },
        )
    }

    fn param_str(h: &Helper, i: usize) -> Result<String, RenderErrorReason> {
        let p = h
            .param(i)
            .ok_or(RenderErrorReason::ParamNotFoundForIndex("helper", i))?;
        Ok(match p.value() {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        })
    }

    /// A JSON pointer in words: `/details/dealValue` → "Details › deal value",
    /// `/team/0/email` → "Team › #1 › email".
    pub fn field(pointer: &str) -> String {
        let words = |segment: &str| {
            let segment = segment.replace("~1", "/").replace("~0", "~");
            if let Ok(i) = segment.parse::<usize>() {
                return format!("#{}", i + 1);
            }
            let mut out = String::new();
            let chars: Vec<char> = segment.chars().collect();
            for (i, &c) in chars.iter().enumerate() {
                let after_lower = i > 0 && chars[i - 1].is_lowercase();
                let before_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                let acronym_end = i > 0 && chars[i - 1].is_uppercase() && before_lower;
                if c.is_uppercase() && (after_lower || acronym_end) {
                    out.push(' ');
                }
                out.push(c);
            }
            // Lower-case the words but keep acronyms (MCI, ID) as they are.
            out.split(' ')
                .map(|w| {
                    if w.chars().filter(|c| c.is_uppercase()).count() > 1 {
                        w.to_string()
                    } else {
                        w.to_lowercase()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text = pointer
            .split('/')
            .filter(|s| !s.is_empty())
            .map(words)
            .collect::<Vec<_>>()
            .join(" › ");
        let mut chars = text.chars();
        match chars.next() {
            Some(first) => first.to_uppercase().chain(chars).collect(),
            None => pointer.to_string(),
        }
    }

    pub fn relative(d: jiff::SignedDuration) -> String {
        let secs = d.as_secs();
        let abs = secs.unsigned_abs();
        let (n, unit) = match abs {
            0..=89 => return "now".into(),
            90..=3569 => ((abs + 30) / 60, "minute"),
            3570..=129_599 => ((abs + 1800) / 3600, "hour"),
            _ => ((abs + 43_200) / 86_400, "day"),
        };
        let unit = if n == 1 {
            unit.to_string()
        } else {
            format!("{unit}s")
        };
        if secs >= 0 {
            format!("in {n} {unit}")
        } else {
            format!("{n} {unit} ago")
        }
    }

    /// The time left until a deadline, to the hour: "4 days 17 h left", "5 h left",
    /// "40 min left", "past the deadline".
    pub fn left(d: jiff::SignedDuration) -> String {
        let secs = d.as_secs();
        if secs <= 0 {
            return "past the deadline".into();
        }
        let (days, hours, mins) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
        match (days, hours) {
            (0, 0) => format!("{} min left", mins.max(1)),
            (0, h) => format!("{h} h left"),
            (1, 0) => "1 day left".into(),
            (d, 0) => format!("{d} days left"),
            (1, h) => format!("1 day {h} h left"),
            (d, h) => format!("{d} days {h} h left"),
        }
    }

    pub use crate::notify::text::money;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn five_thousand_nested_blocks_are_refused_with_their_place_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let deep = format!("{}x{}", "{{#if a}}".repeat(5000), "{{/if}}".repeat(5000));
        std::fs::write(dir.path().join("referral_new.text.hbs"), deep).unwrap();
        let err = Templates::load_dir(dir.path(), &jiff::tz::TimeZone::UTC)
            .unwrap_err()
            .to_string();
        assert!(err.contains("referral_new.text.hbs:1:"), "{err}");
        assert!(err.contains("nested more than 64"), "{err}");
        // Sixty-four levels are fine.
        let ok = format!("{}x{}", "{{#if a}}".repeat(64), "{{/if}}".repeat(64));
        std::fs::write(dir.path().join("referral_new.text.hbs"), ok).unwrap();
        assert!(Templates::load_dir(dir.path(), &jiff::tz::TimeZone::UTC).is_ok());
    }

    #[test]
    fn json_pointers_are_told_as_field_names() {
        assert_eq!(helpers::field("/details/dealValue"), "Details › deal value");
        assert_eq!(helpers::field("/team/0/email"), "Team › #1 › email");
        assert_eq!(
            helpers::field("/customerProfile/ids/MPNId"),
            "Customer profile › ids › MPN id"
        );
        assert_eq!(helpers::field("/status"), "Status");
    }

    #[test]
    fn time_left_is_told_to_the_hour() {
        let h = jiff::SignedDuration::from_hours;
        assert_eq!(helpers::left(h(113)), "4 days 17 h left");
        assert_eq!(helpers::left(h(24)), "1 day left");
        assert_eq!(helpers::left(h(5)), "5 h left");
        assert_eq!(
            helpers::left(jiff::SignedDuration::from_mins(40)),
            "40 min left"
        );
        assert_eq!(helpers::left(h(-1)), "past the deadline");
    }

    #[test]
    fn helpers_format_money_and_relative_time() {
        assert_eq!(helpers::money(&json!(185000), "USD"), "185,000 USD");
        assert_eq!(helpers::money(&json!(1234.5), "EUR"), "1,234.50 EUR");
        assert_eq!(helpers::money(&json!(999), ""), "999");
        assert_eq!(
            helpers::relative(jiff::SignedDuration::from_hours(48)),
            "in 2 days"
        );
        assert_eq!(
            helpers::relative(jiff::SignedDuration::from_hours(-3)),
            "3 hours ago"
        );
        assert_eq!(
            helpers::relative(jiff::SignedDuration::from_hours(1)),
            "in 1 hour"
        );
    }
}
