//! Message templates: handlebars in strict mode, loaded from the `templates` folder (or the
//! set shipped inside the binary). A template named `referral_new.text.hbs` is the plain-text
//! form of the `referral_new` template. Templates see the event as JSON: `kind`, `record`,
//! `previous`, `changes`, `data`, `entity_id`, `detected_at`.
//!
//! Plain text is rendered without escaping; formats that need escaping (HTML, Adaptive Card
//! JSON) get their own registry with the matching escape function when those channels come.
//! Must never: fail to produce a message at delivery time — see [`Templates::render_or_fallback`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use handlebars::Handlebars;

use crate::config::{ConfigError, Located};
use crate::model::{Event, Message};

/// The output format a channel needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Plain text: console, inbox files, webhook `text`.
    Text,
}

impl Format {
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Text => "text",
        }
    }
}

/// The loaded templates.
#[derive(Debug)]
pub struct Templates {
    text: Handlebars<'static>,
    names: BTreeSet<String>,
    origin: PathBuf,
}

impl Templates {
    fn empty(origin: PathBuf) -> Self {
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        Self {
            text,
            names: BTreeSet::new(),
            origin,
        }
    }

    /// Loads every `NAME.FORMAT.hbs` file of `dir`.
    pub fn load_dir(dir: &Path) -> Result<Templates, ConfigError> {
        let entries = std::fs::read_dir(dir).map_err(|source| ConfigError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "hbs"))
            .collect();
        files.sort();
        let sources = files
            .into_iter()
            .map(|path| crate::config::read_file(&path).map(|text| (path, text)))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_sources(dir, sources)
    }

    /// Builds templates from (file name, text) pairs.
    pub fn from_sources(
        origin: &Path,
        sources: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<Templates, ConfigError> {
        let mut t = Self::empty(origin.to_path_buf());
        let mut errors = Vec::new();
        for (path, text) in sources {
            let file_name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let Some(stem) = file_name.strip_suffix(".hbs") else {
                continue;
            };
            let Some((name, format)) = stem.rsplit_once('.') else {
                errors.push(Located {
                    file: path.clone(),
                    line: 1,
                    column: 1,
                    message: format!("template file names are NAME.FORMAT.hbs (e.g. referral_new.text.hbs), not {file_name:?}"),
                });
                continue;
            };
            if format != Format::Text.suffix() {
                errors.push(Located {
                    file: path.clone(),
                    line: 1,
                    column: 1,
                    message: format!("unknown template format {format:?}: this version renders \"text\" templates"),
                });
                continue;
            }
            if let Err(e) = t.text.register_template_string(stem, &text) {
                let (line, column) = e.pos().unwrap_or((1, 1));
                errors.push(Located {
                    file: path.clone(),
                    line: line as u64,
                    column: column as u64,
                    message: e.reason().to_string(),
                });
                continue;
            }
            t.names.insert(name.to_string());
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

    pub fn has(&self, name: &str, format: Format) -> bool {
        self.text
            .has_template(&format!("{name}.{}", format.suffix()))
    }

    /// Template names (without format).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(String::as_str)
    }

    /// Renders `name` in `format` for `event`.
    pub fn render(&self, name: &str, format: Format, event: &Event) -> Result<Message, String> {
        let key = format!("{name}.{}", format.suffix());
        let body = self.text.render(&key, event).map_err(|e| {
            let mut msg = e.reason().to_string();
            if let Some(line) = e.line_no {
                msg = format!("line {line}: {msg}");
            }
            format!("template {key}: {msg}")
        })?;
        let title = body
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or(event.kind.as_str())
            .to_string();
        Ok(Message { title, body })
    }

    /// Renders, and if the template fails on this event (a field it needs is missing), still
    /// produces a plain message that says what happened, so no notification is lost.
    pub fn render_or_fallback(&self, name: &str, format: Format, event: &Event) -> Message {
        self.render(name, format, event).unwrap_or_else(|err| {
            tracing::warn!(event = %event.id, kind = %event.kind, error = %err, "template failed; sending the fallback message");
            let title = format!("partnerwatch: {} for {}", event.kind, event.entity_id);
            let body = format!(
                "{title}\n\n(The template {name:?} could not render this event: {err}. Run `partnerwatch check`.)\n\n{}",
                serde_json::to_string_pretty(&event.record).unwrap_or_default()
            );
            Message { title, body }
        })
    }
}
