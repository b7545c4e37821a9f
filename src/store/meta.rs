//! The `meta` tree: small values the store keeps beside records, events and the outbox. Every
//! key is a [`MetaKey`] and every value has one codec here, so no other module spells a key
//! or a value's bytes. The byte layout is the one state folders have always had: a folder
//! written by an older partnerwatch reads the same.
//!
//! Must never: be written outside a commit's transaction, except the one-off markers of an
//! upgrade.

use jiff::Timestamp;

use super::{Store, StoreError};

/// One key of the `meta` tree.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaKey {
    /// When the dataset's first complete sweep (its baseline) was committed.
    Baseline(String),
    /// When the dataset's last complete sweep was committed.
    LastSweep(String),
    /// When the dataset's last good sweep started: the next incremental sweep asks for what
    /// was updated since (less an overlap).
    SweepStarted(String),
    /// When the dataset's last full sweep (every page, removals included) started.
    FullSweep(String),
    /// When a rule last sent about a record (the rule's throttle window).
    Throttle(String),
    /// A digest slot that is taken: its deliveries are in the outbox.
    DigestSlot(String),
    /// One failed sweep of a source, sortable by time (the digest's health section).
    SweepFailed { at: Timestamp, source: String },
    /// A source's failed sweeps in a row ([`SourceHealth`]).
    SourceHealth(String),
    /// The side of a threshold line a value was last seen on ([`Side`]).
    ThresholdSide(ThresholdKey),
    /// The outbox's status indexes were built for this folder.
    OutboxStatusIndexed,
    /// The dataset's baseline was taken by a version that counts every record's changes
    /// (guarantee 10): no record has more earlier versions in its history than changes
    /// counted, so a record changed at most as often as the history keeps needs no trimming.
    ChangesCounted(String),
}

/// A threshold line of one field of one record (`copilot.threshold_crossed`).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdKey {
    pub dataset: String,
    pub entity: String,
    pub field: String,
    pub line: f64,
}

impl MetaKey {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            MetaKey::Baseline(d) => format!("baseline/{d}"),
            MetaKey::LastSweep(d) => format!("last_sweep/{d}"),
            MetaKey::SweepStarted(d) => format!("sweep_started/{d}"),
            MetaKey::FullSweep(d) => format!("full_sweep/{d}"),
            MetaKey::Throttle(k) => format!("throttle/{k}"),
            MetaKey::DigestSlot(s) => format!("digest/{s}"),
            MetaKey::SweepFailed { at, source } => {
                format!("sweep_failed/{:015}/{source}", at.as_millisecond().max(0))
            }
            MetaKey::SourceHealth(s) => format!("failures/{s}"),
            MetaKey::ThresholdSide(t) => format!(
                "threshold/{}/{}\u{0}{}\u{0}{}",
                t.dataset, t.entity, t.field, t.line
            ),
            MetaKey::OutboxStatusIndexed => "outbox_status_index".to_string(),
            MetaKey::ChangesCounted(d) => format!("changes_counted/{d}"),
        }
        .into_bytes()
    }

    /// A failed sweep's key read back: (when, source).
    fn sweep_failed(key: &[u8]) -> Option<(Timestamp, String)> {
        let key = std::str::from_utf8(key).ok()?;
        let mut parts = key.splitn(3, '/').skip(1);
        let (ms, source) = (parts.next()?, parts.next()?);
        let at = Timestamp::from_millisecond(ms.parse().ok()?).ok()?;
        Some((at, source.to_string()))
    }
}

/// A metadata write of a commit: a key and its new value, or its removal.
pub type MetaWrite = (MetaKey, Option<MetaValue>);

/// The values of the `meta` tree, each with its one encoding.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    /// A time, as RFC 3339 text.
    Time(Timestamp),
    /// The key alone says it all.
    Marker,
    Health(SourceHealth),
    Side(Side),
}

impl MetaValue {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            MetaValue::Time(t) => t.to_string().into_bytes(),
            MetaValue::Marker => Vec::new(),
            MetaValue::Health(h) => format!(
                "{} {}{}",
                h.failures,
                h.since,
                if h.announced { " announced" } else { "" }
            )
            .into_bytes(),
            MetaValue::Side(Side::Above) => b"above".to_vec(),
            MetaValue::Side(Side::Below) => b"below".to_vec(),
        }
    }
}

/// Failed sweeps of a source in a row, and since when it has been failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceHealth {
    pub failures: u32,
    pub since: Timestamp,
    /// `system.source_failing` was raised for this run of failures.
    pub announced: bool,
}

impl SourceHealth {
    fn decode(bytes: &[u8]) -> Option<SourceHealth> {
        // "3 2026-11-23T08:00:00Z", with " announced" since the flag exists.
        let mut parts = std::str::from_utf8(bytes).ok()?.split(' ');
        let failures: u32 = parts.next()?.parse().ok()?;
        let since = parts.next()?.parse().ok()?;
        Some(SourceHealth {
            failures,
            since,
            announced: parts.next() == Some("announced"),
        })
    }
}

/// Which side of a threshold line a value is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Above,
    Below,
}

/// Failed sweeps are remembered this long (for the digest's health section).
pub const SWEEP_FAILURES_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(60 * 24);

impl Store {
    fn meta_bytes(&self, key: &MetaKey) -> Result<Option<sled::IVec>, StoreError> {
        let t = self.t()?;
        Ok(t.meta.get(key.encode())?)
    }

    pub(super) fn meta_time(&self, key: &MetaKey) -> Result<Option<Timestamp>, StoreError> {
        match self.meta_bytes(key)? {
            None => Ok(None),
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| StoreError::Corrupt {
                    what: "meta",
                    detail: String::from_utf8_lossy(&key.encode()).into_owned(),
                }),
        }
    }

    /// When the dataset's first complete sweep (its baseline) was committed, if it was.
    pub fn baseline_at(&self, dataset: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&MetaKey::Baseline(dataset.to_string()))
    }

    /// When the dataset's last complete sweep was committed.
    pub fn last_sweep_at(&self, dataset: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&MetaKey::LastSweep(dataset.to_string()))
    }

    /// When the dataset's last good sweep started, and its last full one.
    pub fn sweep_started_at(
        &self,
        dataset: &str,
    ) -> Result<(Option<Timestamp>, Option<Timestamp>), StoreError> {
        Ok((
            self.meta_time(&MetaKey::SweepStarted(dataset.to_string()))?,
            self.meta_time(&MetaKey::FullSweep(dataset.to_string()))?,
        ))
    }

    /// When a rule last sent about a record (see [`crate::rules::PlanContext`]).
    pub fn throttle_mark(&self, key: &str) -> Result<Option<Timestamp>, StoreError> {
        self.meta_time(&MetaKey::Throttle(key.to_string()))
    }

    /// Whether the digest slot `key` was already taken (its deliveries are in the outbox).
    pub fn digest_sent(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self
            .t()?
            .meta
            .contains_key(MetaKey::DigestSlot(key.to_string()).encode())?)
    }

    /// A source's failed sweeps in a row; `None` when its last sweep succeeded. An entry that
    /// cannot be read counts as none.
    pub fn source_health(&self, source: &str) -> Result<Option<SourceHealth>, StoreError> {
        Ok(self
            .meta_bytes(&MetaKey::SourceHealth(source.to_string()))?
            .and_then(|v| SourceHealth::decode(&v)))
    }

    /// The side of a threshold line last seen.
    pub fn threshold_side(&self, key: &ThresholdKey) -> Result<Option<Side>, StoreError> {
        Ok(self
            .meta_bytes(&MetaKey::ThresholdSide(key.clone()))?
            .map(|v| {
                if v.as_ref() == b"above" {
                    Side::Above
                } else {
                    Side::Below
                }
            }))
    }

    /// Failed sweeps in `[start, end)`: (when, source).
    pub fn sweep_failures(
        &self,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<(Timestamp, String)>, StoreError> {
        let t = self.t()?;
        let from = MetaKey::SweepFailed {
            at: start,
            source: String::new(),
        }
        .encode();
        let to = MetaKey::SweepFailed {
            at: end,
            source: String::new(),
        }
        .encode();
        let mut out = Vec::new();
        for item in t.meta.range(from..to) {
            let (k, _) = item?;
            if let Some(found) = MetaKey::sweep_failed(&k) {
                out.push(found);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_the_layout_older_state_folders_have() {
        let at: Timestamp = "2026-11-01T00:00:00Z".parse().unwrap();
        let text = |k: MetaKey| String::from_utf8(k.encode()).unwrap();
        assert_eq!(
            text(MetaKey::Baseline("referrals".into())),
            "baseline/referrals"
        );
        assert_eq!(
            text(MetaKey::SweepFailed {
                at,
                source: "copilot".into()
            }),
            "sweep_failed/001793491200000/copilot"
        );
        assert_eq!(
            MetaKey::sweep_failed(
                &MetaKey::SweepFailed {
                    at,
                    source: "copilot".into()
                }
                .encode()
            ),
            Some((at, "copilot".to_string()))
        );
        let health = SourceHealth {
            failures: 3,
            since: at,
            announced: true,
        };
        // A value written before the flag existed reads as not announced.
        assert_eq!(
            SourceHealth::decode(format!("3 {at}").as_bytes()),
            Some(SourceHealth {
                announced: false,
                ..health
            })
        );
        assert_eq!(
            SourceHealth::decode(&MetaValue::Health(health).encode()),
            Some(health)
        );
        assert_eq!(
            text(MetaKey::ThresholdSide(ThresholdKey {
                dataset: "copilot".into(),
                entity: "t1".into(),
                field: "utilizationPercent".into(),
                line: 50.0
            })),
            "threshold/copilot/t1\u{0}utilizationPercent\u{0}50"
        );
    }
}
