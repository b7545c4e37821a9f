//! The configuration file (`partnerwatch.yaml`, DESIGN §3): what to poll, how to sign in,
//! where messages go. Read with serde-saphyr so that every mistake is reported as
//! `file:line:column: what is wrong`; `${NAME}` is expanded from the environment as values
//! are read (see [`env`]). Secrets are held as [`Secret`] and never printed.

pub mod env;
pub mod http;
pub mod secret;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_saphyr::Spanned;

pub use crate::duration::Every;
pub use env::EnvString;
pub use http::HttpConfig;
pub use secret::Secret;

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
    match first.rfind(" at line ") {
        Some(pos) => first[..pos].to_string(),
        None => first.to_string(),
    }
}

/// Reads a file, naming it in the error.
pub fn read_file(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// `partnerwatch.yaml` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    state_dir: Option<EnvString>,
    #[serde(default)]
    timezone: Option<Spanned<EnvString>>,
    #[serde(default)]
    auth: AuthConfig,
    #[serde(default)]
    sources: RawSources,
    #[serde(default)]
    channels: BTreeMap<String, Spanned<ChannelConfig>>,
    #[serde(default)]
    rules: Option<EnvString>,
    #[serde(default)]
    templates: Option<EnvString>,
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

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSources {
    #[serde(default)]
    referrals: Option<ReferralsConfig>,
    #[serde(default)]
    abss: Option<AbssConfig>,
    #[serde(default)]
    license_usage: Option<LicenseUsageConfig>,
}

/// `sources.license_usage:` — Partner Center analytics, license usage per workload.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenseUsageConfig {
    #[serde(default = "default_license_url")]
    pub base_url: EnvString,
    #[serde(default = "default_license_every")]
    pub every: Every,
    /// Rows per page (`top`, at most 10000).
    #[serde(default = "default_license_top")]
    pub page_size: u32,
    #[serde(default = "default_failing_after")]
    pub failing_after: u32,
}

impl LicenseUsageConfig {
    /// The defaults, at `base_url` (the demo and tests).
    pub fn at(base_url: &str) -> Self {
        Self {
            base_url: EnvString(base_url.to_string()),
            every: default_license_every(),
            page_size: default_license_top(),
            failing_after: default_failing_after(),
        }
    }
}

fn default_license_url() -> EnvString {
    EnvString("https://api.partnercenter.microsoft.com/partner".into())
}
fn default_license_every() -> Every {
    Every(std::time::Duration::from_secs(24 * 3600))
}
fn default_license_top() -> u32 {
    10_000
}

/// `sources.abss:` — Partner Insights (AI Business Solutions & Security Insights).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbssConfig {
    /// The API root with its version, e.g. `https://m365partner.microsoft.com/abss/v1.5/api`.
    #[serde(default = "default_abss_url")]
    pub base_url: EnvString,
    #[serde(default = "default_abss_every")]
    pub every: Every,
    /// Which datasets to read.
    #[serde(default = "default_abss_datasets")]
    pub datasets: Vec<Spanned<String>>,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_failing_after")]
    pub failing_after: u32,
    /// The API allows 600 calls a minute per user.
    #[serde(default = "default_calls_per_minute")]
    pub calls_per_minute: u32,
    /// The eight adoption health classes from best to worst, for `copilot.health_changed`'s
    /// `direction`.
    #[serde(default)]
    pub health_ranking: Option<Vec<String>>,
    /// Numeric Copilot fields and the values whose crossing raises `copilot.threshold_crossed`.
    #[serde(default)]
    pub thresholds: BTreeMap<String, Vec<f64>>,
    /// How far past a threshold a value must go to count as crossed (no flapping).
    #[serde(default = "default_hysteresis")]
    pub hysteresis: f64,
}

impl AbssConfig {
    /// Every dataset of `base_url`, with the defaults (the demo and tests).
    pub fn at(base_url: &str) -> Self {
        Self {
            base_url: EnvString(base_url.to_string()),
            every: default_abss_every(),
            datasets: default_abss_datasets(),
            page_size: default_page_size(),
            failing_after: default_failing_after(),
            calls_per_minute: default_calls_per_minute(),
            health_ranking: None,
            thresholds: BTreeMap::new(),
            hysteresis: default_hysteresis(),
        }
    }
}

fn default_abss_url() -> EnvString {
    EnvString("https://m365partner.microsoft.com/abss/v1.5/api".into())
}
fn default_abss_every() -> Every {
    Every(std::time::Duration::from_secs(6 * 3600))
}
fn default_abss_datasets() -> Vec<Spanned<String>> {
    [
        "copilot",
        "copilot_summary",
        "adoption_summary",
        "mci_performance",
        "mci_summary",
        "partner_referrals",
    ]
    .into_iter()
    .map(|d| {
        Spanned::new(
            d.to_string(),
            serde_saphyr::Location::UNKNOWN,
            serde_saphyr::Location::UNKNOWN,
        )
    })
    .collect()
}
fn default_page_size() -> u32 {
    100
}
fn default_calls_per_minute() -> u32 {
    600
}
fn default_hysteresis() -> f64 {
    1.0
}

/// `auth:` — how partnerwatch gets bearer tokens.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    pub tenant_id: Option<EnvString>,
    pub client_id: Option<EnvString>,
    pub client_secret: Option<Secret>,
    pub authority: Option<EnvString>,
    /// A bearer token used as is for every source.
    pub static_token: Option<Secret>,
    /// Workload identity (e.g. AKS): a file holding a federated token, exchanged for access
    /// tokens with no secret. Defaults to `$AZURE_FEDERATED_TOKEN_FILE` when that is set.
    pub federated_token_file: Option<EnvString>,
    /// Managed identity of the Azure host: `system`, or the client id of a user-assigned
    /// identity. Needs no secret, no tenant and no client id.
    pub managed_identity: Option<EnvString>,
}

/// `sources.referrals:` — the Partner Center Referrals API v1.0.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferralsConfig {
    #[serde(default = "default_referrals_url")]
    pub base_url: EnvString,
    #[serde(default = "default_referrals_every")]
    pub every: Every,
    /// An OData `$filter`, e.g. `direction eq 'Incoming'`.
    #[serde(default)]
    pub filter: Option<EnvString>,
    /// After this many failed sweeps in a row, `system.source_failing` is raised.
    #[serde(default = "default_failing_after")]
    pub failing_after: u32,
}

fn default_failing_after() -> u32 {
    3
}

fn default_referrals_url() -> EnvString {
    EnvString("https://api.partner.microsoft.com/v1.0".into())
}

fn default_referrals_every() -> Every {
    Every(std::time::Duration::from_secs(300))
}

/// One entry of `channels:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Prints each message to standard output.
    Console {},
    /// Writes each message as a file into a folder.
    Inbox { dir: EnvString },
    /// POSTs the event and the rendered message as JSON.
    Webhook { url: Secret },
    /// A Microsoft Teams Workflows webhook.
    Teams { webhook_url: Secret },
    /// SMTP email.
    Email {
        smtp_url: Secret,
        from: EnvString,
        to: Vec<EnvString>,
        /// Sign in to SMTP with XOAUTH2 as this mailbox, with a token from `auth` (Exchange
        /// Online is retiring password SMTP).
        #[serde(default)]
        oauth_user: Option<EnvString>,
    },
    /// A Telegram chat through a bot.
    Telegram {
        bot_token: Secret,
        chat_id: EnvString,
        #[serde(default)]
        api_url: Option<EnvString>,
    },
}

impl ChannelConfig {
    /// The format this channel's messages are rendered in: the one place that decides it.
    pub fn format(&self) -> crate::model::Format {
        use crate::model::Format;
        match self {
            ChannelConfig::Console {}
            | ChannelConfig::Inbox { .. }
            | ChannelConfig::Webhook { .. } => Format::Text,
            ChannelConfig::Email { .. } => Format::Html,
            ChannelConfig::Telegram { .. } => Format::Telegram,
            ChannelConfig::Teams { .. } => Format::Teams,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ChannelConfig::Console {} => "console",
            ChannelConfig::Inbox { .. } => "inbox",
            ChannelConfig::Webhook { .. } => "webhook",
            ChannelConfig::Teams { .. } => "teams",
            ChannelConfig::Email { .. } => "email",
            ChannelConfig::Telegram { .. } => "telegram",
        }
    }
}

/// `delivery:` — how hard the outbox tries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Attempts before a delivery is dead-lettered.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// The first retry waits this long; each further one twice as long.
    #[serde(default = "default_backoff")]
    pub backoff: Every,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            backoff: default_backoff(),
        }
    }
}

fn default_attempts() -> u32 {
    8
}

fn default_backoff() -> Every {
    Every(std::time::Duration::from_secs(30))
}

/// Earlier versions kept per record unless `history_versions` says otherwise.
pub const DEFAULT_HISTORY_VERSIONS: usize = 20;

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
                base.join(p)
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
        let mut channels = BTreeMap::new();
        for (name, spanned) in raw.channels {
            let mut channel = spanned.value;
            if let ChannelConfig::Inbox { dir } = &mut channel {
                let p = PathBuf::from(&dir.0);
                if p.is_relative() {
                    dir.0 = base.join(p).to_string_lossy().into_owned();
                }
            }
            channels.insert(name, channel);
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
            auth: raw.auth,
            referrals: raw.sources.referrals,
            abss: {
                if let Some(abss) = &raw.sources.abss {
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
                raw.sources.abss
            },
            license_usage: raw.sources.license_usage,
            channels,
            rules_dir: resolve(raw.rules, "rules"),
            templates_dir: resolve(raw.templates, "templates"),
            delivery: raw.delivery,
            http: raw.http,
            history_versions: raw.history_versions.unwrap_or(DEFAULT_HISTORY_VERSIONS),
            listen: match raw.listen {
                None => Some(DEFAULT_LISTEN.to_string()),
                Some(l) if l.0 == "off" || l.0.is_empty() => None,
                Some(l) => Some(l.0),
            },
            digests,
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
    fn literal_secret_in_a_bad_file_is_not_echoed() {
        let text = "auth:\n  static_token: s3cr3t-value-xyz\n  bogus: [\n";
        let msg = Config::from_yaml(Path::new("pw.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("s3cr3t-value-xyz"), "{msg}");
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
