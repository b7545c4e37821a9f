//! Partner Center analytics: license usage per workload
//! (`GET {base_url}/v1/analytics/commercial/usage/license`, api-docs/license-usage-analytics.txt).
//! Pages are read with `top`/`skip`; a next link, if the answer has one, is followed by its query
//! only. Rows are keyed by customer tenant, product and workload; the docs spell fields in
//! several ways (`Value`/`value`, `licenseActive`/`licensesActive`), all are read.

use std::collections::HashSet;
use std::time::Duration;

use sonic_rs::JsonValueTrait;
use url::Url;

use super::fetch::Fetcher;
use super::lazy::{record_id, within};
use super::paging::next_page_url;
use super::{RecordSink, SourceError, SweepStats};
use crate::auth::{TokenProvider, PARTNER_CENTER_ANALYTICS};
use crate::config::LicenseUsageConfig;
use crate::http::Http;
use crate::model::Dataset;

pub const DATASET: &str = Dataset::LicenseUsage.name();
const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct LicenseSource {
    pub every: Duration,
    pub failing_after: u32,
    pub max_removed_share: f64,
    endpoint: Url,
    top: u32,
    http: Http,
    tokens: TokenProvider,
}

/// The row key: customer tenant, product and workload, lower-cased.
pub fn row_key(raw: &str) -> Option<String> {
    let part = |keys: &[&str]| record_id(raw, keys).map(|v| v.to_lowercase());
    let tenant = part(&["customerTenantId", "CustomerTenantId", "customerTenantID"])?;
    let product = part(&["productId", "ProductId", "productID"]).unwrap_or_default();
    let workload = part(&["workloadCode", "WorkloadCode"]).unwrap_or_default();
    Some(format!("{tenant}|{product}|{workload}"))
}

impl LicenseSource {
    pub fn new(
        config: &LicenseUsageConfig,
        http: Http,
        tokens: TokenProvider,
    ) -> Result<Self, String> {
        let endpoint = super::endpoint(
            "sources.license_usage.base_url",
            &config.base_url,
            "/v1/analytics/commercial/usage/license",
        )?;
        Ok(Self {
            every: config.every.as_duration(),
            failing_after: config.failing_after,
            max_removed_share: config.max_removed_share,
            endpoint,
            top: config.page_size.clamp(1, 10_000),
            http,
            tokens,
        })
    }

    pub async fn sweep(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
    ) -> Result<SweepStats, SourceError> {
        let mut fetch =
            Fetcher::new(&self.http, &self.tokens, PARTNER_CENTER_ANALYTICS, now).await?;
        let mut stats = SweepStats::default();
        let mut body = Vec::new();
        let mut skip: u64 = 0;
        let mut url = self.page_url(skip);
        let mut seen_queries = HashSet::new();
        let mut linked = false;
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
            let (mut rows, mut next) = ("", None);
            for entry in sonic_rs::to_object_iter(body.as_slice()) {
                let (key, value) = entry.map_err(|e| malformed(e.to_string()))?;
                match key.as_ref() {
                    "Value" | "value" | "items" if value.is_array() => {
                        rows = within(&body, value.as_raw_str())
                            .ok_or_else(|| malformed("rows could not be read in place".into()))?;
                    }
                    "@nextLink" | "@odata.nextLink" | "nextLink" => {
                        next = value.as_str().map(str::to_string)
                    }
                    // `links.next.uri`, as Partner Center's other answers have it, or a bare
                    // `link(s).uri`.
                    "link" | "links" => {
                        let uri = |v: &sonic_rs::LazyValue<'_>| {
                            v.get("uri").and_then(|u| u.as_str().map(str::to_string))
                        };
                        next = value
                            .get("next")
                            .and_then(|n| uri(&n))
                            .or_else(|| uri(&value))
                            .or(next)
                    }
                    _ => {}
                }
            }
            if rows.is_empty()
                && !body.is_empty()
                && sonic_rs::get(body.as_slice(), ["Value"]).is_err()
                && sonic_rs::get(body.as_slice(), ["value"]).is_err()
            {
                return Err(malformed("the page has no `Value` array".into()));
            }
            let mut on_page: u64 = 0;
            if !rows.is_empty() {
                for item in sonic_rs::to_array_iter(rows.as_bytes()) {
                    let raw = item.map_err(|e| malformed(e.to_string()))?;
                    let raw = raw.as_raw_str();
                    on_page += 1;
                    match row_key(raw) {
                        Some(id) => {
                            stats.take(sink, DATASET, &id, raw, fetch.page_depth(), malformed)?
                        }
                        None => stats.without_id += 1,
                    }
                }
            }
            skip += on_page;
            if on_page == 0 && next.is_some() {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason: "an empty page links to a next one".into(),
                });
            }
            linked |= next.is_some();
            let following = match next {
                Some(link) => Some(next_page_url(&self.endpoint, &link).map_err(|reason| {
                    SourceError::Chain {
                        dataset: DATASET,
                        page: page_no,
                        reason,
                    }
                })?),
                // A server that links its pages ends where the links end. One that never
                // links them (and may cap pages below `top`) is asked for the next `skip`
                // until a page comes back empty; a full page always may have more.
                None if on_page == u64::from(self.top) || (on_page > 0 && !linked) => {
                    Some(self.page_url(skip))
                }
                None => None,
            };
            let Some(following) = following else { break };
            if !seen_queries.insert(following.query().unwrap_or_default().to_string())
                || page_no >= MAX_PAGES
            {
                return Err(SourceError::Chain {
                    dataset: DATASET,
                    page: page_no,
                    reason: "the pages lead back to one already read".into(),
                });
            }
            url = following;
        }
        Ok(stats)
    }

    /// The call `check --online` makes: the first row.
    pub fn probes(&self) -> (Vec<super::probe::Probe>, &TokenProvider, &Http) {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("top", "1")
            .append_pair("skip", "0");
        let probe = super::probe::Probe {
            api: "License usage",
            url,
            audience: PARTNER_CENTER_ANALYTICS,
        };
        (vec![probe], &self.tokens, &self.http)
    }

    fn page_url(&self, skip: u64) -> Url {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut()
            .append_pair("top", &self.top.to_string())
            .append_pair("skip", &skip.to_string());
        url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_keyed_by_tenant_product_and_workload_in_any_casing() {
        let raw =
            r#"{"CustomerTenantId":"0112A436-B14E","productId":"6FD2C87F","WorkloadCode":"SPO"}"#;
        assert_eq!(row_key(raw).as_deref(), Some("0112a436-b14e|6fd2c87f|spo"));
        assert_eq!(row_key(r#"{"productId":"x"}"#), None);
    }
}
