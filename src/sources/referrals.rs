//! The Partner Center Referrals API v1.0 (`GET {base_url}/engagements/referrals`), with the
//! configured OData `$filter`, ordered by creation so that a referral arriving during a sweep
//! lands on the last page instead of shifting earlier ones. Pages are followed through
//! `@odata.nextLink` (see [`super::paging`]).

use std::borrow::Cow;
use std::collections::HashSet;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use super::paging::next_page_url;
use super::{RecordSink, SourceError, SweepStats};
use crate::auth::TokenProvider;
use crate::config::ReferralsConfig;
use crate::http::Http;

pub const DATASET: &str = "referrals";
/// The audience of Partner Center tokens.
pub const AUDIENCE: &str = "https://api.partner.microsoft.com";
/// A chain longer than this is taken as a loop.
pub const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct ReferralsSource {
    pub every: Duration,
    endpoint: Url,
    filter: Option<String>,
    http: Http,
    tokens: TokenProvider,
}

#[derive(Deserialize)]
struct Page<'a> {
    #[serde(rename = "@odata.count", default)]
    count: Option<u64>,
    #[serde(borrow)]
    value: Vec<&'a RawValue>,
    #[serde(rename = "@odata.nextLink", default)]
    next_link: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct IdOnly<'a> {
    #[serde(alias = "ID", alias = "Id", borrow, default)]
    id: Option<Cow<'a, str>>,
}

impl ReferralsSource {
    pub fn new(
        config: &ReferralsConfig,
        http: Http,
        tokens: TokenProvider,
    ) -> Result<Self, String> {
        let base = config.base_url.trim_end_matches('/');
        let endpoint = Url::parse(&format!("{base}/engagements/referrals")).map_err(|e| {
            format!(
                "sources.referrals.base_url {:?} is not a URL: {e}",
                config.base_url.0
            )
        })?;
        Ok(Self {
            every: config.every.as_duration(),
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

    /// Reads every page into `sink`.
    pub async fn sweep(&self, sink: &mut dyn RecordSink) -> Result<SweepStats, SourceError> {
        let token = self.tokens.token(AUDIENCE).await?;
        let mut stats = SweepStats::default();
        let mut url = self.first_url();
        let mut expected = None;
        let mut queries_seen = HashSet::new();
        loop {
            stats.pages += 1;
            let page_no = stats.pages;
            let body = self
                .http
                .get(&url, &token, &format!("{DATASET} page {page_no}"))
                .await?;
            let page: Page = serde_json::from_slice(&body).map_err(|e| SourceError::Malformed {
                dataset: DATASET,
                page: page_no,
                error: e.to_string(),
            })?;
            if page_no == 1 {
                expected = page.count;
            }
            for raw in &page.value {
                let id = serde_json::from_str::<IdOnly>(raw.get())
                    .ok()
                    .and_then(|r| r.id)
                    .filter(|id| !id.is_empty());
                match id {
                    Some(id) => {
                        sink.record(&id, raw.get().as_bytes())?;
                        stats.records += 1;
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
        let received = stats.records + stats.without_id;
        if let Some(expected) = expected {
            if received < expected {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: stats.pages,
                    reason: format!(
                        "@odata.count promised {expected} records, the pages held {received}"
                    ),
                });
            }
        }
        Ok(stats)
    }
}
