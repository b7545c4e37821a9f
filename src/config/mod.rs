//! The configuration file (`partnerwatch.yaml`, DESIGN §3): what to poll, how to sign in,
//! where messages go. Read with serde-saphyr so that every mistake is reported as
//! `file:line:column: what is wrong`; `${NAME}` is expanded from the environment as values
//! are read (see [`env`]). Secrets are held as [`Secret`] and never printed.

pub mod channels;
pub mod env;
pub mod error;
pub mod http;
pub mod secret;
pub mod sources;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::duration::Every;
pub use channels::{ChannelConfig, DeliveryConfig};
pub use env::EnvString;
pub use error::{parse_yaml, read_file, ConfigError, Located};
pub use http::HttpConfig;
pub use secret::Secret;
use sources::RawSources;
pub use sources::{AbssConfig, AuthConfig, LicenseUsageConfig, ReferralsConfig};

/// `partnerwatch.yaml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    state_dir: Option<EnvString>,
    #[serde(default)]
    timezone: Option<Spanned<EnvString>>,
    #[serde(default)]
    auth: Option<Spanned<AuthConfig>>,
    #[serde(default)]
    sources: RawSources,
    #[serde(default)]
    channels: BTreeMap<String, Spanned<ChannelConfig>>,
    #[serde(default)]
    rules: Option<Spanned<EnvString>>,
    #[serde(default)]
    templates: Option<Spanned<EnvString>>,
    #[serde(default)]
    delivery: DeliveryConfig,
    #[serde(default)]
    http: HttpConfig,
    #[serde(default)]
    history_versions: Option<usize>,
    #[serde(default)]
    listen: Option<EnvString>,
    #[serde(default)]
    digests: Vec<Spanned<RawDigest>>,
    #[serde(default)]
    links: LinksConfig,
    #[serde(default)]
    actions: Option<Spanned<ActionsConfig>>,
}

/// `actions:` — acting on referrals from chat. Absent: no buttons, no listening.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    #[serde(default)]
    pub telegram: Option<TelegramActions>,
    /// A press asks "Accept Contoso — 50,000 USD? Yes / No" before anything is sent.
    #[serde(default = "default_confirm")]
    pub confirm: bool,
}

fn default_confirm() -> bool {
    true
}

/// `actions.telegram`: the channel whose bot shows buttons and listens, and who may press.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramActions {
    /// A channel of `type: telegram`.
    pub channel: String,
    /// Telegram user ids that may act; anyone else is refused and nothing is sent.
    #[serde(default)]
    pub allow: Vec<i64>,
}

/// `links:` — where "Open in Partner Center" buttons point; `{id}` is the record's id.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinksConfig {
    #[serde(default = "default_referral_link")]
    pub referral: String,
}

impl Default for LinksConfig {
    fn default() -> Self {
        LinksConfig {
            referral: default_referral_link(),
        }
    }
}

/// The Partner Center page of a co-sell referral.
pub const DEFAULT_REFERRAL_LINK: &str =
    "https://partner.microsoft.com/dashboard/referrals/v2/opportunities/{id}";

fn default_referral_link() -> String {
    DEFAULT_REFERRAL_LINK.to_string()
}

impl LinksConfig {
    /// The link for the referral `id` (URL-encoded into the template).
    pub fn referral(&self, id: &str) -> String {
        let id: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        self.referral.replace("{id}", &id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDigest {
    name: String,
    schedule: Spanned<String>,
    channels: Vec<Spanned<String>>,
    #[serde(default)]
    template: Option<String>,
}

/// `digests:` — one scheduled summary.
#[derive(Debug, Clone)]
pub struct DigestConfig {
    pub name: String,
    /// The cron expression as written.
    pub schedule: String,
    /// Its slots in the configured time zone.
    pub slots: crate::cron::Schedule,
    pub channels: Vec<String>,
    /// Default `digest_weekly`.
    pub template: String,
}

/// The template a digest uses when it names none.
pub const DEFAULT_DIGEST_TEMPLATE: &str = "digest_weekly";

/// Earlier versions kept per record unless `history_versions` says otherwise.
pub const DEFAULT_HISTORY_VERSIONS: usize = 20;

/// The shortest `every` for a source on another machine than this one.
pub const MIN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Where `run` serves `/healthz` and `/metrics` unless `listen` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

/// A loaded, checked configuration with paths made absolute against the file's folder.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub state_dir: PathBuf,
    pub timezone: jiff::tz::TimeZone,
    pub auth: AuthConfig,
    pub referrals: Option<ReferralsConfig>,
    pub abss: Option<AbssConfig>,
    pub license_usage: Option<LicenseUsageConfig>,
    pub channels: BTreeMap<String, ChannelConfig>,
    pub rules_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub delivery: DeliveryConfig,
    pub http: HttpConfig,
    /// Earlier versions kept per record for `partnerwatch history`.
    pub history_versions: usize,
    /// Where `run` serves `/healthz` and `/metrics` (`None`: not served).
    pub listen: Option<String>,
    pub digests: Vec<DigestConfig>,
    /// Where "Open in Partner Center" buttons point.
    pub links: LinksConfig,
    /// `actions:`, checked: its Telegram channel exists and is a Telegram channel.
    pub actions: Option<ActionsConfig>,
    /// Where the entries of the file are, for errors found after it was read.
    pub places: Places,
}

/// Where the entries of a configuration file are (`channels.NAME`, `sources.referrals`,
/// `auth`, `rules`, `templates`): errors that only show when a channel or source is built
/// still name the file, line and column.
#[derive(Debug, Clone, Default)]
pub struct Places(BTreeMap<String, (u64, u64)>);

impl Config {
    /// `message` about the entry `key`, at its place in the file when it has one (an entry
    /// left at its default is reported against the file).
    pub fn error_at(&self, key: &str, message: impl std::fmt::Display) -> ConfigError {
        let (line, column) = self.places.0.get(key).copied().unwrap_or((1, 1));
        ConfigError::At(Located {
            file: self.file.clone(),
            line,
            column,
            message: message.to_string(),
        })
    }
}

impl Config {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = read_file(path)?;
        Self::from_yaml(path, &text)
    }

    /// Parses configuration text that was read from `file`.
    pub fn from_yaml(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_yaml(file, text)?;
        let base = file
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let resolve = |value: Option<EnvString>, default: &str| -> PathBuf {
            let p = PathBuf::from(value.map(|v| v.0).unwrap_or_else(|| default.to_string()));
            if p.is_absolute() {
                p
            } else {
                tidy(&base.join(p))
            }
        };
        let timezone = match &raw.timezone {
            None => jiff::tz::TimeZone::UTC,
            Some(tz) => jiff::tz::TimeZone::get(&tz.value).map_err(|e| {
                ConfigError::At(Located::at(
                    file,
                    tz,
                    format!(
                        "unknown time zone {:?} ({e}); use an IANA name like Europe/Berlin",
                        tz.value.0
                    ),
                ))
            })?,
        };
        let mut places = Places::default();
        let mut note = |key: String, line: u64, column: u64| {
            places.0.insert(key, (line, column));
        };
        for (name, spanned) in &raw.channels {
            note(
                format!("channels.{name}"),
                spanned.referenced.line(),
                spanned.referenced.column(),
            );
        }
        let spans = [
            (
                "sources.referrals",
                raw.sources.referrals.as_ref().map(|s| s.referenced),
            ),
            (
                "sources.abss",
                raw.sources.abss.as_ref().map(|s| s.referenced),
            ),
            (
                "sources.license_usage",
                raw.sources.license_usage.as_ref().map(|s| s.referenced),
            ),
            ("auth", raw.auth.as_ref().map(|s| s.referenced)),
            ("rules", raw.rules.as_ref().map(|s| s.referenced)),
            ("templates", raw.templates.as_ref().map(|s| s.referenced)),
        ];
        for (key, at) in spans {
            if let Some(at) = at {
                note(key.to_string(), at.line(), at.column());
            }
        }
        let mut channels = BTreeMap::new();
        for (name, spanned) in raw.channels {
            let mut channel = spanned.value;
            if let ChannelConfig::Inbox { dir } = &mut channel {
                let p = PathBuf::from(&dir.0);
                if p.is_relative() {
                    dir.0 = tidy(&base.join(p)).to_string_lossy().into_owned();
                }
            }
            channels.insert(name, channel);
        }
        // Which channels are Telegram channels (for `actions.telegram.channel`).
        let raw_channel_types: BTreeMap<String, bool> = channels
            .iter()
            .map(|(n, c)| (n.clone(), matches!(c, ChannelConfig::Telegram { .. })))
            .collect();
        // Partner Center is not to be polled in a loop; the simulator on this machine may be.
        let place =
            |s: serde_saphyr::Location, url: &EnvString, every: Every| (s, url.0.clone(), every);
        let polled = [
            (raw.sources.referrals.as_ref())
                .map(|s| place(s.referenced, &s.value.base_url, s.value.every)),
            (raw.sources.abss.as_ref())
                .map(|s| place(s.referenced, &s.value.base_url, s.value.every)),
            (raw.sources.license_usage.as_ref())
                .map(|s| place(s.referenced, &s.value.base_url, s.value.every)),
        ];
        for (at, url, every) in polled.into_iter().flatten() {
            let local = url::Url::parse(&url)
                .ok()
                .is_some_and(|u| matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")));
            if every.0 < MIN_EVERY && !local {
                return Err(ConfigError::At(Located {
                    file: file.to_path_buf(),
                    line: at.line(),
                    column: at.column(),
                    message: format!(
                        "every: {every} is more often than Partner Center may be polled; use {} or more",
                        Every(MIN_EVERY)
                    ),
                }));
            }
        }
        let mut digests: Vec<DigestConfig> = Vec::new();
        for d in raw.digests {
            let at = |message: String| ConfigError::At(Located::at(file, &d, message));
            if digests.iter().any(|o| o.name == d.value.name) {
                return Err(at(format!(
                    "a digest named {:?} is defined twice",
                    d.value.name
                )));
            }
            let slots = crate::cron::Schedule::parse(&d.value.schedule.value, timezone.clone())
                .map_err(|e| {
                    ConfigError::At(Located::at(
                        file,
                        &d.value.schedule,
                        format!("schedule: {e}"),
                    ))
                })?;
            if d.value.channels.is_empty() {
                return Err(at(format!("digest {:?} lists no channels", d.value.name)));
            }
            for c in &d.value.channels {
                if !channels.contains_key(&c.value) {
                    let known: Vec<&str> = channels.keys().map(String::as_str).collect();
                    return Err(ConfigError::At(Located::at(
                        file,
                        c,
                        format!(
                            "unknown channel {:?} (configured: {})",
                            c.value,
                            known.join(", ")
                        ),
                    )));
                }
            }
            digests.push(DigestConfig {
                name: d.value.name,
                schedule: d.value.schedule.value,
                slots,
                channels: d.value.channels.into_iter().map(|c| c.value).collect(),
                template: d
                    .value
                    .template
                    .unwrap_or_else(|| DEFAULT_DIGEST_TEMPLATE.to_string()),
            });
        }
        Ok(Config {
            file: file.to_path_buf(),
            state_dir: resolve(raw.state_dir, "state"),
            timezone,
            auth: raw.auth.map(|a| a.value).unwrap_or_default(),
            referrals: raw.sources.referrals.map(|r| r.value),
            abss: {
                if let Some(abss) = raw.sources.abss.as_ref().map(|a| &a.value) {
                    for d in &abss.datasets {
                        if crate::model::Dataset::abss(&d.value).is_none() {
                            let known: Vec<&str> = crate::model::Dataset::ABSS
                                .iter()
                                .map(|d| d.name())
                                .collect();
                            let msg = format!(
                                "unknown dataset {:?} (known: {})",
                                d.value,
                                known.join(", ")
                            );
                            return Err(ConfigError::At(Located::at(file, d, msg)));
                        }
                    }
                }
                raw.sources.abss.map(|a| a.value)
            },
            license_usage: raw.sources.license_usage.map(|l| l.value),
            channels,
            rules_dir: resolve(raw.rules.map(|r| r.value), "rules"),
            templates_dir: resolve(raw.templates.map(|t| t.value), "templates"),
            delivery: raw.delivery,
            http: raw.http,
            history_versions: raw.history_versions.unwrap_or(DEFAULT_HISTORY_VERSIONS),
            links: {
                let link = &raw.links.referral;
                let local =
                    link.starts_with("http://127.0.0.1") || link.starts_with("http://localhost");
                if !link.contains("{id}") || !(link.starts_with("https://") || local) {
                    return Err(ConfigError::Invalid(format!(
                        "links.referral must be an https URL with {{id}} where the referral's id goes (it is {link:?})"
                    )));
                }
                raw.links.clone()
            },
            actions: match raw.actions {
                None => None,
                Some(a) => {
                    if let Some(t) = &a.value.telegram {
                        let is_telegram =
                            matches!(raw_channel_types.get(t.channel.as_str()), Some(true));
                        if !is_telegram {
                            let known: Vec<&str> = raw_channel_types
                                .iter()
                                .filter(|(_, tg)| **tg)
                                .map(|(n, _)| n.as_str())
                                .collect();
                            return Err(ConfigError::At(Located::at(file, &a, format!(
                                "actions.telegram.channel {:?} is not a telegram channel (telegram channels: {})",
                                t.channel,
                                if known.is_empty() { "none".to_string() } else { known.join(", ") }
                            ))));
                        }
                        if t.allow.is_empty() {
                            return Err(ConfigError::At(Located::at(file, &a, "actions.telegram.allow is empty: list the Telegram user ids that may act (/help in the channel's chat shows yours)".to_string())));
                        }
                    }
                    Some(a.value)
                }
            },
            listen: match raw.listen {
                None => Some(DEFAULT_LISTEN.to_string()),
                Some(l) if l.0 == "off" || l.0.is_empty() => None,
                Some(l) => Some(l.0),
            },
            digests,
            places,
        })
    }

    /// The names of the configured sources, in polling order.
    pub fn source_names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.referrals.is_some() {
            names.push("referrals");
        }
        if self.license_usage.is_some() {
            names.push("license_usage");
        }
        if let Some(abss) = &self.abss {
            names.extend(
                abss.datasets
                    .iter()
                    .filter_map(|d| crate::model::Dataset::abss(&d.value))
                    .map(|d| d.name()),
            );
        }
        names
    }
}

/// `path` without its `.` parts (`./templates` for `././templates`), as people write it.
fn tidy(path: &Path) -> PathBuf {
    let clean: PathBuf = path
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    if clean.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_is_reported_with_file_line_and_column() {
        let text = "state_dir: ./s\nsources:\n  referals:\n    every: 5m\n";
        let err = Config::from_yaml(Path::new("pw.yaml"), text).unwrap_err();
        let msg = err.to_string();
        assert!(msg.starts_with("pw.yaml:3:"), "{msg}");
        assert!(msg.contains("referals"), "{msg}");
    }

    #[test]
    fn bad_duration_names_its_place() {
        let text = "sources:\n  referrals:\n    every: 5 minutes\n";
        let msg = Config::from_yaml(Path::new("pw.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("pw.yaml:3:"), "{msg}");
        assert!(msg.contains("unknown unit"), "{msg}");
    }

    #[test]
    fn missing_environment_variable_is_named_not_echoed() {
        let text = "auth:\n  static_token: ${PW_TEST_SURELY_UNSET_TOKEN}\n";
        let msg = Config::from_yaml(Path::new("pw.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("pw.yaml:2:"), "{msg}");
        assert!(
            msg.contains("PW_TEST_SURELY_UNSET_TOKEN is not set"),
            "{msg}"
        );
    }

    #[test]
    fn a_secret_run_into_its_key_or_left_unclosed_is_not_echoed() {
        for text in [
            "channels:\n  m: { type: email, smtp_url:\"smtp://u:PASSW0RDX@h\", from: a@b.c, to: [a@b.c] }\n",
            "auth:\n  static_token: \"PASSW0RDX-${UNCLOSED\"\n",
        ] {
            let msg = Config::from_yaml(Path::new("pw.yaml"), text)
                .unwrap_err()
                .to_string();
            assert!(msg.starts_with("pw.yaml:2:"), "{msg}");
            assert!(!msg.contains("PASSW0RDX"), "{msg}");
        }
    }

    #[test]
    fn partner_center_is_not_polled_more_than_once_a_minute() {
        let msg = Config::from_yaml(
            Path::new("pw.yaml"),
            "sources:\n  referrals:\n    every: 0s\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.starts_with("pw.yaml:3:5:") && msg.contains("1m or more"),
            "{msg}"
        );
        // The simulator on this machine may be polled as often as a test likes.
        Config::from_yaml(
            Path::new("pw.yaml"),
            "sources:\n  referrals:\n    base_url: http://127.0.0.1:9/v1.0\n    every: 1s\n",
        )
        .unwrap();
    }

    #[test]
    fn literal_secret_in_a_bad_file_is_not_echoed() {
        let text = "auth:\n  static_token: s3cr3t-value-xyz\n  bogus: [\n";
        let msg = Config::from_yaml(Path::new("pw.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("s3cr3t-value-xyz"), "{msg}");
    }

    #[test]
    fn actions_name_a_telegram_channel_and_someone_allowed() {
        let channels = "channels:\n  log: { type: console }\n  chat: { type: telegram, bot_token: \"1:x\", chat_id: \"-100\" }\n";
        let load = |actions: &str| {
            Config::from_yaml(Path::new("pw.yaml"), &format!("{channels}{actions}"))
        };
        let ok = load("actions:\n  telegram: { channel: chat, allow: [42] }\n").unwrap();
        let actions = ok.actions.unwrap();
        assert!(actions.confirm, "confirm is the default");
        assert_eq!(actions.telegram.unwrap().allow, vec![42]);
        let msg = load("actions:\n  telegram: { channel: log, allow: [42] }\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("pw.yaml:5:")
                && msg.contains("is not a telegram channel (telegram channels: chat)"),
            "{msg}"
        );
        let msg = load("actions:\n  telegram: { channel: chat }\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("allow is empty"), "{msg}");
        let msg = load("actions:\n  telegram: { channel: chat, allow: [42], deny: [1] }\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("deny"), "unknown keys are refused: {msg}");
    }

    #[test]
    fn paths_are_relative_to_the_config_file() {
        let text = "channels:\n  box: { type: inbox, dir: out }\n";
        let cfg = Config::from_yaml(Path::new("/etc/pw/partnerwatch.yaml"), text).unwrap();
        assert_eq!(cfg.state_dir, PathBuf::from("/etc/pw/state"));
        assert_eq!(cfg.rules_dir, PathBuf::from("/etc/pw/rules"));
        match &cfg.channels["box"] {
            ChannelConfig::Inbox { dir } => assert_eq!(dir.0, "/etc/pw/out"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn digest_mistakes_name_their_line_and_column() {
        let base = "channels:\n  mail: { type: console }\ndigests:\n";
        let err = |digest: &str| {
            Config::from_yaml(Path::new("pw.yaml"), &format!("{base}{digest}"))
                .unwrap_err()
                .to_string()
        };
        let msg = err("  - name: weekly\n    schedule: \"every monday\"\n    channels: [mail]\n");
        assert!(
            msg.starts_with("pw.yaml:5:") && msg.contains("0 8 * * MON"),
            "{msg}"
        );
        let msg =
            err("  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [mail, sales]\n");
        assert!(
            msg.starts_with("pw.yaml:6:") && msg.contains("unknown channel \"sales\""),
            "{msg}"
        );
        let msg = err("  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [mail]\n    when: monday\n");
        assert!(msg.starts_with("pw.yaml:") && msg.contains("when"), "{msg}");
        let ok = Config::from_yaml(
            Path::new("pw.yaml"),
            &format!(
                "{base}  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [mail]\n"
            ),
        )
        .unwrap();
        assert_eq!(ok.digests[0].template, DEFAULT_DIGEST_TEMPLATE);
    }
}
