//! `auth:` and `sources:` — how partnerwatch signs in and what it polls, with their defaults.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::{EnvString, Every, Secret};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSources {
    #[serde(default)]
    pub(super) referrals: Option<Spanned<ReferralsConfig>>,
    #[serde(default)]
    pub(super) abss: Option<Spanned<AbssConfig>>,
    #[serde(default)]
    pub(super) license_usage: Option<Spanned<LicenseUsageConfig>>,
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
    /// A complete sweep that would remove more than this share of a dataset of at least
    /// [`PLAUSIBLE_FROM`] records is refused as failed (`poll --accept-removals` takes it once).
    #[serde(default = "default_max_removed_share")]
    pub max_removed_share: f64,
}

impl LicenseUsageConfig {
    /// The defaults, at `base_url` (the demo and tests).
    pub fn at(base_url: &str) -> Self {
        Self {
            base_url: EnvString(base_url.to_string()),
            every: default_license_every(),
            page_size: default_license_top(),
            failing_after: default_failing_after(),
            max_removed_share: default_max_removed_share(),
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
    /// A complete sweep that would remove more than this share of a dataset of at least
    /// [`PLAUSIBLE_FROM`] records is refused as failed (`poll --accept-removals` takes it once).
    #[serde(default = "default_max_removed_share")]
    pub max_removed_share: f64,
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
            max_removed_share: default_max_removed_share(),
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
    /// A complete sweep that would remove more than this share of a dataset of at least
    /// [`PLAUSIBLE_FROM`] records is refused as failed (`poll --accept-removals` takes it once).
    #[serde(default = "default_max_removed_share")]
    pub max_removed_share: f64,
    /// Between full sweeps, ask only for the referrals updated since the last good sweep
    /// (`$filter=updatedDateTime gt …`). Removals are found by full sweeps only.
    #[serde(default)]
    pub incremental: bool,
    /// With `incremental`, how often a full sweep still reads every page (removals, and
    /// anything the filter missed).
    #[serde(default = "default_full_every")]
    pub full_every: Every,
}

impl ReferralsConfig {
    /// The defaults, at `base_url` (the demo, the benchmarks and tests).
    pub fn at(base_url: &str) -> Self {
        Self {
            base_url: EnvString(base_url.to_string()),
            every: default_referrals_every(),
            filter: None,
            failing_after: default_failing_after(),
            max_removed_share: default_max_removed_share(),
            incremental: false,
            full_every: default_full_every(),
        }
    }
}

fn default_full_every() -> Every {
    Every(std::time::Duration::from_secs(24 * 3600))
}

/// Datasets smaller than this are not guarded by `max_removed_share`.
pub const PLAUSIBLE_FROM: usize = 20;

fn default_max_removed_share() -> f64 {
    0.5
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
