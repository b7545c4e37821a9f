//! Partner Insights — the API for AI Business Solutions & Security Insights (ABSS,
//! api-docs/abss-partner-insights-api-v1.3.txt). The version is part of `base_url`: v1.3 is the
//! documented one and v1.5 its announced successor (v1.3 support ends 30 Aug 2026). Paged
//! datasets use `page` (from 1) and `pageSize` and answer `{count, hasMore, items}`; summary
//! datasets are one object, stored as one record. Calls are limited per host (600 a minute).

use std::time::Duration;

use sonic_rs::JsonValueTrait;
use url::Url;

use super::fetch::Fetcher;
use super::lazy::{record_id, within};
use super::{RecordSink, SourceError, SweepStats};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::auth::{TokenProvider, PARTNER_INSIGHTS};
use crate::config::AbssConfig;
use crate::http::Http;
pub use crate::model::Dataset;

/// Where each ABSS dataset lives in the API and how its items are keyed.
trait AbssDataset {
    fn path(self) -> &'static str;
    fn page_query(self) -> &'static str;
    fn page_root(self) -> Option<&'static str>;
    fn composite_key(self, raw: &str) -> Option<String>;
    fn keys(self) -> Option<&'static [&'static str]>;
}

impl AbssDataset for Dataset {
    fn path(self) -> &'static str {
        match self {
            Dataset::Copilot => "opportunities/copilot",
            Dataset::CopilotSummary => "opportunities/copilot/summary",
            Dataset::AdoptionSummary => "opportunities/copilot/adoptionSummary",
            Dataset::MciPerformance => "mci/partnerPerformance",
            Dataset::MciSummary => "mci/partnerPerformance/summary",
            Dataset::PartnerReferrals => "partnerReferrals",
            // Not ABSS datasets: no AbssSource is built for them.
            Dataset::Referrals | Dataset::LicenseUsage => "",
        }
    }

    /// What a page request adds to `page` and `pageSize`: a stable order (`sortColumn`, by the
    /// key), so rows cannot shift between pages, and for partner referrals the declined ones
    /// too (`showDeclinedReferrals`; without it a decline would vanish from the list).
    fn page_query(self) -> &'static str {
        match self {
            Dataset::Copilot => "&sortColumn=tenantId&sortDirection=asc",
            Dataset::MciPerformance => "&sortColumn=tenantID&sortDirection=asc",
            Dataset::PartnerReferrals => {
                "&sortColumn=created&sortDirection=asc&showDeclinedReferrals=true"
            }
            _ => "",
        }
    }

    /// Where the paged object sits in the answer, if not at its top.
    fn page_root(self) -> Option<&'static str> {
        match self {
            Dataset::MciPerformance => Some("partnerPerformanceDetails"),
            _ => None,
        }
    }

    /// A key for an item without one of [`Dataset::keys`]: for MCI rows, tenant, engagement
    /// and solution play together; for a partner referral whose `partnerReferralId` is null,
    /// its documented integer `id`.
    fn composite_key(self, raw: &str) -> Option<String> {
        if self == Dataset::PartnerReferrals {
            return record_id(raw, &["id", "Id", "ID"]).map(|id| format!("id:{id}"));
        }
        if self != Dataset::MciPerformance {
            return None;
        }
        let parts: Vec<String> = ["tenantID", "engagementName", "solutionPlay"]
            .iter()
            .map(|k| {
                record_id(raw, &[k])
                    .map(|v| v.into_owned())
                    .unwrap_or_default()
            })
            .collect();
        parts.iter().any(|p| !p.is_empty()).then(|| parts.join("|"))
    }

    /// The key of each item of a paged dataset, in the spellings the pages use.
    fn keys(self) -> Option<&'static [&'static str]> {
        match self {
            Dataset::Copilot => Some(&["tenantId", "tenantID", "TenantId"]),
            // Keyed by tenant, engagement and play (`composite_key`): a claim appears later,
            // and a key that flipped to it would announce the row as new.
            Dataset::MciPerformance => Some(&[]),
            Dataset::PartnerReferrals => Some(&["partnerReferralId", "PartnerReferralId"]),
            Dataset::CopilotSummary | Dataset::AdoptionSummary | Dataset::MciSummary => None,
            Dataset::Referrals | Dataset::LicenseUsage => None,
        }
    }
}

/// A page stops the chain if there are more than this many.
pub const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct AbssSource {
    pub dataset: Dataset,
    pub every: Duration,
    pub failing_after: u32,
    pub max_removed_share: f64,
    base: String,
    page_size: u32,
    http: Http,
    tokens: TokenProvider,
    /// Whether any dataset of this API root has answered 200 since the start, shared by the
    /// datasets of one `sources.abss`: only then is a 404 read as "no data".
    answered: Arc<AtomicBool>,
}

/// The 404 the docs give every Partner Insights endpoint, "not found or not available with
/// the given input parameters": no data for this partner — or a wrong `base_url`. It counts
/// as an empty dataset once the same API root has answered another call.
fn no_data(e: &SourceError) -> bool {
    matches!(e, SourceError::Http(h) if h.status() == Some(reqwest::StatusCode::NOT_FOUND))
}

impl AbssSource {
    pub fn new(
        dataset: Dataset,
        config: &AbssConfig,
        http: Http,
        tokens: TokenProvider,
        answered: Arc<AtomicBool>,
    ) -> Result<Self, String> {
        let base = config.base_url.trim_end_matches('/').to_string();
        let url = super::endpoint("sources.abss.base_url", &config.base_url, "")?;
        if let Some(host) = url.host_str() {
            http.limit_host(host, config.calls_per_minute);
        }
        Ok(Self {
            dataset,
            every: config.every.as_duration(),
            failing_after: config.failing_after,
            max_removed_share: config.max_removed_share,
            base,
            page_size: config.page_size.clamp(1, 1000),
            http,
            tokens,
            answered,
        })
    }

    /// The call `check --online` makes for Partner Insights: `/currentUser`, who the token
    /// reaches the API as.
    pub fn probes(&self) -> (Vec<super::probe::Probe>, &TokenProvider, &Http) {
        let url = Url::parse(&format!("{}/currentUser", self.base)).expect("base_url was checked");
        let probe = super::probe::Probe {
            api: "Partner Insights",
            url,
            audience: PARTNER_INSIGHTS,
        };
        (vec![probe], &self.tokens, &self.http)
    }

    /// Reads the whole dataset into `sink`.
    pub async fn sweep(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
    ) -> Result<SweepStats, SourceError> {
        let mut fetch = Fetcher::new(&self.http, &self.tokens, PARTNER_INSIGHTS, now).await?;
        let name = self.dataset.name();
        let mut stats = SweepStats::default();
        let mut body = Vec::new();
        let Some(keys) = self.dataset.keys() else {
            stats.pages = 1;
            let url = Url::parse(&format!("{}/{}", self.base, self.dataset.path()))
                .expect("base_url was checked");
            match fetch.get(&url, name, &mut body).await {
                Err(e) if no_data(&e) && self.answered.load(Ordering::Relaxed) => {
                    tracing::info!(dataset = name, "no data (404)");
                    return Ok(stats);
                }
                other => other?,
            }
            self.answered.store(true, Ordering::Relaxed);
            let text = std::str::from_utf8(&body).map_err(|e| SourceError::Malformed {
                dataset: name,
                page: 1,
                error: e.to_string(),
            })?;
            let is_object = sonic_rs::get(text, std::iter::empty::<&str>())
                .map(|v| v.is_object())
                .unwrap_or(false);
            if !is_object {
                return Err(SourceError::Malformed {
                    dataset: name,
                    page: 1,
                    error: "the answer is not a JSON object".into(),
                });
            }
            let malformed = |error| SourceError::Malformed {
                dataset: name,
                page: 1,
                error,
            };
            stats.take(sink, name, name, text.trim(), fetch.page_depth(), malformed)?;
            return Ok(stats);
        };
        let mut expected = None;
        loop {
            stats.pages += 1;
            let page_no = stats.pages;
            let url = Url::parse(&format!(
                "{}/{}?page={page_no}&pageSize={}{}",
                self.base,
                self.dataset.path(),
                self.page_size,
                self.dataset.page_query()
            ))
            .expect("base_url was checked");
            match fetch
                .get(&url, &format!("{name} page {page_no}"), &mut body)
                .await
            {
                Err(e) if page_no == 1 && no_data(&e) && self.answered.load(Ordering::Relaxed) => {
                    tracing::info!(dataset = name, "no data (404)");
                    return Ok(stats);
                }
                other => other?,
            }
            self.answered.store(true, Ordering::Relaxed);
            let request = fetch.request().to_string();
            let malformed = |error: String| SourceError::Malformed {
                dataset: name,
                page: page_no,
                error: format!("{error} ({request})"),
            };
            let (mut count, mut has_more, mut items) = (None, false, "");
            let root: &[u8] = match self.dataset.page_root() {
                None => body.as_slice(),
                Some(key) => {
                    let v = sonic_rs::get(body.as_slice(), [key])
                        .map_err(|e| malformed(format!("no `{key}` object: {e}")))?;
                    within(&body, v.as_raw_str())
                        .ok_or_else(|| malformed(format!("`{key}` could not be read in place")))?
                        .as_bytes()
                }
            };
            for entry in sonic_rs::to_object_iter(root) {
                let (key, value) = entry.map_err(|e| malformed(e.to_string()))?;
                match key.as_ref() {
                    "count" | "Count" => count = value.as_u64(),
                    "hasMore" | "HasMore" => has_more = value.as_bool().unwrap_or(false),
                    "items" | "Items" if value.is_array() => {
                        items = within(&body, value.as_raw_str()).ok_or_else(|| {
                            malformed("`items` could not be read in place".into())
                        })?;
                    }
                    _ => {}
                }
            }
            if page_no == 1 {
                expected = count;
            }
            let mut on_page = 0;
            if !items.is_empty() {
                for item in sonic_rs::to_array_iter(items.as_bytes()) {
                    let raw = item.map_err(|e| malformed(e.to_string()))?;
                    let raw = raw.as_raw_str();
                    on_page += 1;
                    let key = record_id(raw, keys)
                        .map(|k| k.into_owned())
                        .or_else(|| self.dataset.composite_key(raw));
                    // A row stored under its claim (as before 0.2) stays there.
                    let key = match (self.dataset, key) {
                        (Dataset::MciPerformance, key) => {
                            let claim =
                                record_id(raw, &["claimID", "claimId"]).map(|k| k.into_owned());
                            match (key, claim) {
                                (Some(k), Some(c)) if !sink.holds(&k) && sink.holds(&c) => Some(c),
                                (Some(k), _) => Some(k),
                                (None, c) => c,
                            }
                        }
                        (_, key) => key,
                    };
                    match key {
                        Some(id) => {
                            stats.take(sink, name, &id, raw, fetch.page_depth(), malformed)?
                        }
                        None => {
                            stats.without_id += 1;
                            tracing::warn!(
                                dataset = name,
                                page = page_no,
                                "skipping an item without a key"
                            );
                        }
                    }
                }
            }
            if !has_more {
                break;
            }
            if on_page == 0 {
                return Err(SourceError::Chain {
                    dataset: name,
                    page: page_no,
                    reason: "hasMore is true on an empty page".into(),
                });
            }
            if page_no >= MAX_PAGES {
                return Err(SourceError::Chain {
                    dataset: name,
                    page: page_no,
                    reason: format!("more than {MAX_PAGES} pages"),
                });
            }
        }
        if let Some(reason) = stats.short_of(expected) {
            return Err(SourceError::Chain {
                dataset: name,
                page: stats.pages,
                reason,
            });
        }
        Ok(stats)
    }
}
