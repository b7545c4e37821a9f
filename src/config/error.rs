//! Mistakes in files the user wrote, with where they are: [`Located`] (`file:line:column:
//! message`), [`ConfigError`], and YAML parsing that reports serde-saphyr's position. Rules and
//! templates use these too. Must never: quote a file's text in an error (a secret may be in it).

use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_saphyr::Spanned;

/// A mistake in a file the user wrote, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl Located {
    /// An error at the place a [`Spanned`] value was read from.
    pub fn at<T>(file: &Path, spanned: &Spanned<T>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_path_buf(),
            line: spanned.referenced.line(),
            column: spanned.referenced.column(),
            message: message.into(),
        }
    }
}

/// Why a configuration, rule or template could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The io error is part of the message (not a `source`), so `{:#}` says it once.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{0}")]
    At(Located),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many(Vec<Located>),
    #[error("{0}")]
    Invalid(String),
}

/// Parses one YAML file into `T`, turning serde-saphyr's error into `file:line:column: …`.
/// The message never quotes the file's text, so a secret written into it is not echoed.
pub fn parse_yaml<T: DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    serde_saphyr::from_str(text).map_err(|err| {
        let (line, column) = err
            .location()
            .map(|l| (l.line(), l.column()))
            .unwrap_or((1, 1));
        ConfigError::At(Located {
            file: file.to_path_buf(),
            line,
            column,
            message: yaml_message(&err),
        })
    })
}

/// The first line of a serde-saphyr error without its own position suffix.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let text = err.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    let first = match first.rfind(" at line ") {
        Some(pos) => &first[..pos],
        None => first,
    };
    unknown_key_shown_safely(first)
}

/// "unknown field `x`" quotes the key; a "key" that is not a name is most likely a value
/// run into it (`smtp_url:"smtp://user:PASSWORD@host"` with no space after the colon), so it
/// is not shown.
fn unknown_key_shown_safely(message: &str) -> String {
    let quoted = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    match quoted {
        Some((key, rest))
            if !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
        {
            format!("an unknown key that is not a name (not shown, it may hold a value: is a space missing after a `:`?){rest}")
        }
        _ => message.to_string(),
    }
}

/// Reads a file, naming it in the error.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}
