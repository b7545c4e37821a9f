//! Sources: each fetches every page of one dataset and hands the records, as the API
//! returned them, to a [`RecordSink`] while they stream in. A sweep either completes — every
//! page read, the page chain intact, the count reached — or fails as a whole; the caller
//! commits nothing for a failed sweep (DESIGN §6, guarantee 1).

pub mod abss;
pub mod fetch;
pub mod lazy;
pub mod license;
pub mod paging;
pub mod probe;
pub mod referrals;

use crate::auth::AuthError;
use crate::http::HttpError;
use crate::store::StoreError;

/// `{base_url}{path}` as a URL; the error names the configuration key (`sources.abss.base_url`).
pub fn endpoint(key: &str, base_url: &str, path: &str) -> Result<url::Url, String> {
    let base = base_url.trim_end_matches('/');
    url::Url::parse(&format!("{base}{path}"))
        .map_err(|e| format!("{key} {base_url:?} is not a URL: {e}"))
}

/// Where a source puts each record of a sweep. `Send`: a sweep is a task that any of the
/// runtime's workers may run ([`crate::cli::run_on_worker`]).
pub trait RecordSink: Send {
    fn record(&mut self, id: &str, raw: &[u8]) -> Result<Taken, IngestError>;

    /// A record the sweep saw but cannot take (nested deeper than [`lazy::MAX_RECORD_DEPTH`]):
    /// its stored version stays as it is, and it is not removed.
    fn keep(&mut self, id: &str) -> Taken;

    /// Whether the store holds a record under `id`: a key that has two forms keeps the one
    /// the record was first stored under.
    fn holds(&self, id: &str) -> bool;

    /// If `from` (a page from where a record with this `id` starts) holds the record stored
    /// under `id`, byte for byte, takes it as seen and unchanged and returns its length: the
    /// page scan skips it ([`lazy::scan_page`]). A record taken here is not handed to
    /// [`RecordSink::record`].
    fn unchanged(&mut self, id: &str, from: &[u8]) -> Option<usize>;
}

/// Whether a record's id came for the first time in this sweep, or again: an id that comes
/// twice means rows shifted between pages, and one row may have been skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    First,
    Again,
}

impl SweepStats {
    /// Hands one record of a page to `sink` ([`take`]) and counts it; a record that cannot
    /// be read is an error of its page (`malformed`).
    #[allow(clippy::too_many_arguments)]
    pub fn take(
        &mut self,
        sink: &mut dyn RecordSink,
        dataset: &'static str,
        id: &str,
        raw: &str,
        page_depth: usize,
        malformed: impl FnOnce(String) -> SourceError,
    ) -> Result<(), SourceError> {
        let taken = take(sink, dataset, id, raw, page_depth).map_err(|e| match e {
            IngestError::Store(e) => SourceError::Store(e),
            e @ IngestError::Malformed { .. } => malformed(e.to_string()),
        })?;
        self.took(dataset, id, taken);
        Ok(())
    }

    /// Counts one record the sweep took.
    fn took(&mut self, dataset: &str, id: &str, taken: Taken) {
        match taken {
            Taken::First => self.records += 1,
            Taken::Again => {
                self.repeated += 1;
                tracing::warn!(
                    dataset,
                    record = id,
                    "the same record came twice in one sweep: the rows shifted between pages"
                );
            }
        }
    }

    /// Why the pages do not add up to the `count` the first promised, if they do not: rows
    /// that shifted between pages would make a skipped row look removed.
    pub fn short_of(&self, expected: Option<u64>) -> Option<String> {
        let received = self.records + self.without_id;
        let expected = expected?;
        (received < expected).then(|| {
            let repeated = match self.repeated {
                0 => String::new(),
                n => format!(" ({n} came twice: the order shifted between pages)"),
            };
            format!("count promised {expected} items, the pages held {received} distinct{repeated}")
        })
    }
}

/// Hands one record to `sink`, or — if it nests deeper than the diff handles — keeps its
/// stored version, with a warning naming it. `page_depth` is its page's nesting (from
/// [`fetch::Fetcher::page_depth`]): a record of a shallow page is not scanned again.
pub fn take(
    sink: &mut dyn RecordSink,
    dataset: &str,
    id: &str,
    raw: &str,
    page_depth: usize,
) -> Result<Taken, IngestError> {
    let depth = if page_depth > lazy::MAX_RECORD_DEPTH {
        lazy::nesting_depth(raw.as_bytes())
    } else {
        0
    };
    if depth > lazy::MAX_RECORD_DEPTH {
        tracing::warn!(
            dataset,
            record = id,
            depth,
            "a record nests deeper than partnerwatch reads; its stored version is kept"
        );
        return Ok(sink.keep(id));
    }
    sink.record(id, raw.as_bytes())
}

/// Why a record could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("record {id}: {error}")]
    Malformed { id: String, error: String },
}

/// Why a sweep did not complete.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{dataset} page {page}: the answer is not the JSON the API documents: {error}")]
    Malformed {
        dataset: &'static str,
        page: u32,
        error: String,
    },
    #[error("{what}: the answer nests {depth} levels deep, more than the {} partnerwatch reads; nothing was changed", lazy::MAX_PAGE_DEPTH)]
    TooDeep { what: String, depth: usize },
    #[error(
        "{what}: {reason}; nothing was changed (raise the limit if the API really holds that much)"
    )]
    TooLarge { what: String, reason: String },
    #[error("{dataset}: broken page chain after page {page}: {reason}")]
    Chain {
        dataset: &'static str,
        page: u32,
        reason: String,
    },
    #[error("{dataset}: the sweep would remove {removed} of {stored} records, more than max_removed_share ({share}) allows; nothing was changed. If they really are gone, run `partnerwatch poll --accept-removals` once")]
    Implausible {
        dataset: &'static str,
        removed: usize,
        stored: usize,
        share: f64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The first page of an incremental sweep was answered 400: the filter of updates may be
    /// what the server refuses. [`referrals::ReferralsSource::sweep`] then sweeps in full, so
    /// this never leaves it.
    #[error("{0}")]
    UpdatesRefused(HttpError),
}

impl SourceError {
    /// How long the API asked to be left alone (a `Retry-After` longer than a sweep waits):
    /// the source is not swept again before.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            SourceError::Http(e) | SourceError::UpdatesRefused(e) => e.retry_after(),
            _ => None,
        }
    }
}

/// What a complete sweep read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepStats {
    pub pages: u32,
    pub records: u64,
    /// Records skipped because they carry no id.
    pub without_id: u64,
    /// Records whose id came again in the same sweep (not counted in `records`).
    pub repeated: u64,
    /// Only part of the list was asked for (an incremental sweep): what it did not list is
    /// not removed.
    pub partial: bool,
}

/// A configured source.
#[derive(Debug)]
pub enum Source {
    Referrals(referrals::ReferralsSource),
    Abss(abss::AbssSource),
    License(license::LicenseSource),
}

impl Source {
    pub fn name(&self) -> &'static str {
        self.dataset().name()
    }

    /// The dataset this source reads.
    pub fn dataset(&self) -> crate::model::Dataset {
        match self {
            Source::Referrals(_) => crate::model::Dataset::Referrals,
            Source::Abss(s) => s.dataset,
            Source::License(_) => crate::model::Dataset::LicenseUsage,
        }
    }

    /// The largest share of the dataset a complete sweep may remove.
    pub fn max_removed_share(&self) -> f64 {
        match self {
            Source::Referrals(s) => s.max_removed_share,
            Source::Abss(s) => s.max_removed_share,
            Source::License(s) => s.max_removed_share,
        }
    }

    /// Failed sweeps in a row before `system.source_failing` is raised.
    pub fn failing_after(&self) -> u32 {
        match self {
            Source::Referrals(s) => s.failing_after,
            Source::Abss(s) => s.failing_after,
            Source::License(s) => s.failing_after,
        }
    }

    pub fn every(&self) -> std::time::Duration {
        match self {
            Source::Referrals(s) => s.every,
            Source::Abss(s) => s.every,
            Source::License(s) => s.every,
        }
    }

    /// How often a full sweep runs when the sweeps between ask only for what changed; `None`
    /// when every sweep is a full one.
    pub fn incremental(&self) -> Option<std::time::Duration> {
        match self {
            Source::Referrals(s) => s.incremental(),
            Source::Abss(_) | Source::License(_) => None,
        }
    }

    /// Sweeps the source into `sink`: all of it, or with `since` (where the source sweeps
    /// incrementally) what changed after it.
    pub async fn sweep(
        &self,
        sink: &mut dyn RecordSink,
        now: jiff::Timestamp,
        since: Option<jiff::Timestamp>,
    ) -> Result<SweepStats, SourceError> {
        match self {
            Source::Referrals(s) => s.sweep(sink, now, since).await,
            Source::Abss(s) => s.sweep(sink, now).await,
            Source::License(s) => s.sweep(sink, now).await,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn endpoints_join_without_double_slashes_and_name_the_key_when_bad() {
        let url = super::endpoint("k", "https://api.example/v1.0/", "/engagements/referrals");
        assert_eq!(
            url.unwrap().as_str(),
            "https://api.example/v1.0/engagements/referrals"
        );
        let err = super::endpoint("sources.referrals.base_url", "api.example", "/x").unwrap_err();
        assert!(
            err.starts_with("sources.referrals.base_url \"api.example\" is not a URL"),
            "{err}"
        );
    }
}
