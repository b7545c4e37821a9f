//! The Partner Center Referrals API v1.0 (`GET {base_url}/engagements/referrals`), with the
//! configured OData `$filter`, ordered by creation so that a referral arriving during a sweep
//! lands on the last page instead of shifting earlier ones. Pages are followed through
//! `@odata.nextLink` (see [`super::paging`]).

use std::collections::HashSet;
use std::time::Duration;

use sonic_rs::JsonValueTrait;
use url::Url;

use super::fetch::Fetcher;
use super::lazy::{record_id, within};
use super::paging::next_page_url;
use super::{RecordSink, SourceError, SweepStats};
use crate::auth::{TokenProvider, PARTNER_CENTER as AUDIENCE};
use crate::config::ReferralsConfig;
use crate::http::Http;
use crate::model::Dataset;

pub const DATASET: &str = Dataset::Referrals.name();
/// A chain longer than this is taken as a loop.
pub const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct ReferralsSource {
    pub every: Duration,
    pub failing_after: u32,
    pub max_removed_share: f64,
    endpoint: Url,
    filter: Option<String>,
    http: Http,
    tokens: TokenProvider,
}

/// The parts of one OData page partnerwatch reads, found without building a tree.
struct ODataPage<'a> {
    count: Option<u64>,
    /// The raw JSON text of the `value` array.
    value: &'a str,
    next_link: Option<String>,
}

/// Walks the top level of a page once; the records stay unparsed text.
fn odata_page(body: &[u8]) -> Result<ODataPage<'_>, String> {
    let mut page = ODataPage {
        count: None,
        value: "",
        next_link: None,
    };
    let mut has_value = false;
    for entry in sonic_rs::to_object_iter(body) {
        let (key, value) = entry.map_err(|e| e.to_string())?;
        match key.as_ref() {
            "@odata.count" => page.count = value.as_u64(),
            "@odata.nextLink" => page.next_link = value.as_str().map(str::to_string),
            "value" => {
                if !value.is_array() {
                    return Err("`value` is not an array".into());
                }
                page.value =
                    within(body, value.as_raw_str()).ok_or("`value` could not be read in place")?;
                has_value = true;
            }
            _ => {}
        }
    }
    if !has_value {
        return Err("the page has no `value` array".into());
    }
    Ok(page)
}

/// The partner-level deal-registration eligibility beside the referrals `endpoint`
/// (`…/engagements/partners/dealregistrationeligibility`).
pub fn partner_eligibility_url(endpoint: &Url) -> Url {
    let mut url = endpoint.clone();
    let root = url
        .path()
        .trim_end_matches("/engagements/referrals")
        .to_string();
    url.set_path(&format!(
        "{root}/engagements/partners/dealregistrationeligibility"
    ));
    url
}

impl ReferralsSource {
    pub fn new(
        config: &ReferralsConfig,
        http: Http,
        tokens: TokenProvider,
    ) -> Result<Self, String> {
        let endpoint = super::endpoint(
            "sources.referrals.base_url",
            &config.base_url,
            "/engagements/referrals",
        )?;
        Ok(Self {
            every: config.every.as_duration(),
            failing_after: config.failing_after,
            max_removed_share: config.max_removed_share,
            endpoint,
            filter: config.filter.as_ref().map(|f| f.0.clone()),
            http,
            tokens,
        })
    }

    fn first_url(&self) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            if let Some(f) = &self.filter {
                q.append_pair("$filter", f);
            }
            q.append_pair("$orderby", "createdDateTime asc");
        }
        url
    }

    /// The calls `check --online` makes: the list's first record, and the partner's
    /// deal-registration eligibility (api-docs/referrals-update-and-deal-registration.txt).
    pub fn probes(&self) -> (Vec<super::probe::Probe>, &TokenProvider, &Http) {
        let mut list = self.endpoint.clone();
        list.query_pairs_mut().append_pair("$top", "1");
        let eligibility = partner_eligibility_url(&self.endpoint);
        let probes = vec![
            super::probe::Probe {
                api: "Referrals",
                url: list,
                audience: AUDIENCE,
            },
            super::probe::Probe {
                api: "Deal registration eligibility",
                url: eligibility,
                audience: AUDIENCE,
            },
        ];
        (probes, &self.tokens, &self.http)
    }

    /// Reads every page into `sink`.
    pub async fn sweep(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
    ) -> Result<SweepStats, SourceError> {
        let mut fetch = Fetcher::new(&self.http, &self.tokens, AUDIENCE, now).await?;
        let mut stats = SweepStats::default();
        let mut url = self.first_url();
        let mut expected = None;
        let mut queries_seen = HashSet::new();
        let mut body = Vec::new();
        loop {
            stats.pages += 1;
            let page_no = stats.pages;
            fetch
                .get(&url, &format!("{DATASET} page {page_no}"), &mut body)
                .await?;
            let request = fetch.request().to_string();
            let malformed = |error: String| SourceError::Malformed {
                dataset: DATASET,
                page: page_no,
                error: format!("{error} ({request})"),
            };
            let page = odata_page(&body).map_err(malformed)?;
            if page_no == 1 {
                expected = page.count;
            }
            let mut on_page = 0u64;
            for item in sonic_rs::to_array_iter(page.value.as_bytes()) {
                let raw = item.map_err(|e| malformed(e.to_string()))?;
                let raw = raw.as_raw_str();
                on_page += 1;
                match record_id(raw, &["id", "ID", "Id"]) {
                    Some(id) => {
                        stats.take(sink, DATASET, &id, raw, fetch.page_depth(), malformed)?
                    }
                    None => {
                        stats.without_id += 1;
                        tracing::warn!(
                            dataset = DATASET,
                            page = page_no,
                            "skipping a record without an id"
                        );
                    }
                }
            }
            let Some(link) = page.next_link else { break };
            if on_page == 0 {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason: "an empty page links to a next one".into(),
                });
            }
            let next =
                next_page_url(&self.endpoint, &link).map_err(|reason| SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason,
                })?;
            if !queries_seen.insert(next.query().unwrap_or_default().to_string()) {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason: "the same next link came twice (a loop)".into(),
                });
            }
            if page_no >= MAX_PAGES {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason: format!("more than {MAX_PAGES} pages"),
                });
            }
            url = next;
        }
        if let Some(reason) = stats.short_of(expected) {
            return Err(SourceError::Chain {
                dataset: DATASET,
                page: stats.pages,
                reason: format!("@odata.{reason}"),
            });
        }
        Ok(stats)
    }
}
