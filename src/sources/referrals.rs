//! The Partner Center Referrals API v1.0 (`GET {base_url}/engagements/referrals`), with the
//! configured OData `$filter`, ordered by creation so that a referral arriving during a sweep
//! lands on the last page instead of shifting earlier ones. Pages are followed through
//! `@odata.nextLink` (see [`super::paging`]).
//!
//! With `incremental: true` a sweep between full ones asks only for what was updated since
//! a given time (`updatedDateTime gt …`, an unquoted OData v4 `DateTimeOffset`, ordered by
//! `updatedDateTime` so a referral updated during the sweep lands on the last page). Such a
//! sweep is *partial*: what it does not list is not removed. The docs show `$filter` only on
//! other fields; a server that refuses this one with 400 gets full sweeps from then on, said
//! once.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sonic_rs::JsonValueTrait;
use url::Url;

use super::fetch::Fetcher;
use super::lazy::{self, record_id, within};
use super::paging::next_page_url;
use super::{RecordSink, SourceError, SweepStats};
use crate::auth::{TokenProvider, PARTNER_CENTER as AUDIENCE};
use crate::config::ReferralsConfig;
use crate::http::Http;
use crate::model::Dataset;

pub const DATASET: &str = Dataset::Referrals.name();
/// The keys a referral's id may come under, the documented one first.
const ID_KEYS: [&str; 3] = ["id", "ID", "Id"];
/// A chain longer than this is taken as a loop.
pub const MAX_PAGES: u32 = 100_000;

#[derive(Debug)]
pub struct ReferralsSource {
    pub every: Duration,
    pub failing_after: u32,
    pub max_removed_share: f64,
    endpoint: Url,
    filter: Option<String>,
    /// With `incremental`: how often a full sweep runs anyway.
    pub full_every: Option<Duration>,
    /// The server refused the `updatedDateTime` filter: every sweep is a full one.
    refused: AtomicBool,
    http: Http,
    tokens: TokenProvider,
}

/// The parts of one OData page partnerwatch reads, found without building a tree.
struct ODataPage<'a> {
    count: Option<u64>,
    /// The raw JSON of the `value` array, not yet checked to be UTF-8: a record the sink
    /// took as unchanged is the bytes it stored, and every other record is checked when
    /// taken.
    value: &'a [u8],
    next_link: Option<String>,
}

/// Walks the top level of a page once; the records stay unparsed text. With `value`, where
/// the page's `value` array lies, the top level is read without it (its records are checked
/// as they are read, not skipped over first).
fn odata_page(body: &[u8], value: Option<std::ops::Range<usize>>) -> Result<ODataPage<'_>, String> {
    if let Some(range) = value {
        let mut rest = Vec::with_capacity(body.len() - range.len() + 2);
        rest.extend_from_slice(&body[..range.start]);
        rest.extend_from_slice(b"[]");
        rest.extend_from_slice(&body[range.end..]);
        let ODataPage {
            count, next_link, ..
        } = odata_page(&rest, None)?;
        return Ok(ODataPage {
            count,
            value: &body[range],
            next_link,
        });
    }
    let mut page = ODataPage {
        count: None,
        value: b"",
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
                page.value = within(body, value.as_raw_str())
                    .ok_or("`value` could not be read in place")?
                    .as_bytes();
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
            full_every: config.incremental.then(|| config.full_every.as_duration()),
            refused: AtomicBool::new(false),
            http,
            tokens,
        })
    }

    /// Whether sweeps between full ones may ask only for what changed: configured, and not
    /// refused by the server.
    pub fn incremental(&self) -> Option<Duration> {
        self.full_every
            .filter(|_| !self.refused.load(Ordering::Relaxed))
    }

    /// The first page's URL: every referral (the configured filter aside), or with `since`
    /// only those updated after it.
    fn first_url(&self, since: Option<jiff::Timestamp>) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            let updated = since.map(|t| {
                // Whole seconds: a literal every OData server reads.
                let t = jiff::Timestamp::from_second(t.as_second()).unwrap_or(t);
                format!("updatedDateTime gt {t}")
            });
            let filter = match (&self.filter, updated) {
                (Some(f), Some(u)) => Some(format!("({f}) and {u}")),
                (f, u) => f.clone().or(u),
            };
            if let Some(f) = filter {
                q.append_pair("$filter", &f);
            }
            let order = if since.is_some() {
                "updatedDateTime asc"
            } else {
                "createdDateTime asc"
            };
            q.append_pair("$orderby", order);
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

    /// Reads every page into `sink`; with `since` (and [`Self::incremental`]) only the
    /// referrals updated after it, and the stats say the sweep was partial. If the server
    /// refuses that filter, the sweep is a full one, and so is every later one.
    pub async fn sweep(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
        since: Option<jiff::Timestamp>,
    ) -> Result<SweepStats, SourceError> {
        let since = since.filter(|_| self.incremental().is_some());
        let Some(since) = since else {
            return self.sweep_from(sink, now, None).await;
        };
        let refused = match self.sweep_from(sink, now, Some(since)).await {
            Err(SourceError::UpdatesRefused(e)) => e,
            other => return other,
        };
        // Nothing was taken: the first page was refused. Was it the filter of updates?
        let full = self.sweep_from(sink, now, None).await;
        if full.is_ok() {
            self.refused.store(true, Ordering::Relaxed);
            tracing::warn!(
                dataset = DATASET,
                error = %refused,
                "the Referrals API refused `$filter=updatedDateTime gt …`; every sweep reads the whole list from now on (set `incremental: false` to stop asking)"
            );
        }
        full
    }

    async fn sweep_from(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
        since: Option<jiff::Timestamp>,
    ) -> Result<SweepStats, SourceError> {
        let mut fetch = Fetcher::new(&self.http, &self.tokens, AUDIENCE, now).await?;
        let mut stats = SweepStats {
            partial: since.is_some(),
            ..SweepStats::default()
        };
        let mut url = self.first_url(since);
        let mut expected = None;
        let mut queries_seen = HashSet::new();
        let mut body = Vec::new();
        loop {
            stats.pages += 1;
            let page_no = stats.pages;
            let what = format!("{DATASET} page {page_no}");
            fetch
                .fetch(&url, &what, &mut body)
                .await
                .map_err(|e| match e {
                    SourceError::Http(e)
                        if page_no == 1
                            && since.is_some()
                            && e.status() == Some(reqwest::StatusCode::BAD_REQUEST) =>
                    {
                        SourceError::UpdatesRefused(e)
                    }
                    e => e,
                })?;
            let mut shape = lazy::scan_page(
                &body,
                lazy::Records {
                    id_key: ID_KEYS[0].as_bytes(),
                    unchanged: &mut |id, from| sink.unchanged(id, from),
                },
            );
            let items = shape.items.take();
            fetch.scanned(&what, shape)?;
            let request = fetch.request().to_string();
            let malformed = |error: String| SourceError::Malformed {
                dataset: DATASET,
                page: page_no,
                error: format!("{error} ({request})"),
            };
            let page = odata_page(&body, fetch.page_value()).map_err(malformed)?;
            if page_no == 1 {
                expected = page.count;
            }
            let (mut on_page, mut unchanged) = (0u64, 0u64);
            let mut take = |raw: &str, id: Option<Cow<'_, str>>| match id {
                Some(id) => stats.take(sink, DATASET, &id, raw, fetch.page_depth(), malformed),
                None => {
                    stats.without_id += 1;
                    tracing::warn!(
                        dataset = DATASET,
                        page = page_no,
                        "skipping a record without an id"
                    );
                    Ok(())
                }
            };
            match items {
                // The scan found every record and most ids: no parser walks the page again.
                Some(items) => {
                    let from = fetch.page_value().map_or(0, |v| v.start);
                    for item in items {
                        on_page += 1;
                        if item.taken {
                            unchanged += 1;
                            continue;
                        }
                        let span = item.span.start - from..item.span.end - from;
                        let raw = std::str::from_utf8(&page.value[span])
                            .map_err(|e| malformed(format!("a record is not UTF-8: {e}")))?;
                        let id = match item.id {
                            // The scan found the id within the record: UTF-8 as well.
                            Some(id) => raw
                                .get(id.start - item.span.start..id.end - item.span.start)
                                .map(Cow::Borrowed),
                            None => record_id(raw, &ID_KEYS),
                        };
                        take(raw, id)?;
                    }
                }
                None => {
                    std::str::from_utf8(page.value).map_err(|e| malformed(e.to_string()))?;
                    for item in sonic_rs::to_array_iter(page.value) {
                        let raw = item.map_err(|e| malformed(e.to_string()))?;
                        let raw = raw.as_raw_str();
                        on_page += 1;
                        take(raw, record_id(raw, &ID_KEYS))?;
                    }
                }
            }
            // Taken by the sink during the scan, as the same records as before.
            stats.records += unchanged;
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
