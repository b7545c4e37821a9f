//! Source health: failed sweeps in a row per source, and the `system.*` events they raise —
//! `system.auth_failed` at the first failure that signing in will not fix, and
//! `system.source_failing` after `failing_after` failures, `system.source_recovered` on the
//! first complete sweep after that. Every failed sweep is also logged for the digest.
//!
//! An implausible sweep (one that would remove too much, see `max_removed_share`) raises
//! `system.source_failing` at once, saying why. Must never: raise `system.source_failing` twice
//! for one run of failures.

use jiff::Timestamp;

use crate::auth::AuthError;
use crate::model::Event;
use crate::sources::SourceError;
use crate::store::{MetaKey, MetaValue, MetaWrite, SourceHealth, SWEEP_FAILURES_KEPT};

/// What one sweep's outcome changes about its source's health.
#[derive(Debug, Default)]
pub struct HealthUpdate {
    pub event: Option<Event>,
    /// The metadata to write with it (none: nothing to store, nothing happened).
    pub meta: Vec<MetaWrite>,
}

/// The health after a sweep of `source` that ended in `error` (or succeeded). `previous` is
/// the stored run of failures; `expired` the failed sweeps older than the digest looks at,
/// which are let go.
pub fn after_sweep(
    source: &str,
    failing_after: u32,
    previous: Option<SourceHealth>,
    error: Option<&SourceError>,
    expired: impl IntoIterator<Item = (Timestamp, String)>,
    now: Timestamp,
) -> HealthUpdate {
    let key = MetaKey::SourceHealth(source.to_string());
    let threshold = failing_after.max(1);
    match (error, previous) {
        (None, None) => HealthUpdate::default(),
        (None, Some(run)) => HealthUpdate {
            event: (run.announced || run.failures >= threshold)
                .then(|| super::system::source_recovered(source, run.failures, run.since, now)),
            meta: vec![(key, None)],
        },
        (Some(e), previous) => {
            let mut run = SourceHealth {
                failures: previous.map_or(0, |p| p.failures) + 1,
                since: previous.map_or(now, |p| p.since),
                announced: previous.is_some_and(|p| p.announced),
            };
            tracing::warn!(source, failures = run.failures, error = %e, "sweep failed; nothing was changed");
            let failing = |run: &mut SourceHealth| {
                run.announced = true;
                super::system::source_failing(source, run.failures, run.since, &e.to_string(), now)
            };
            let event = match e {
                // Signing in will not fix itself: say so at once, with Entra's code.
                SourceError::Auth(AuthError::Entra {
                    error,
                    code,
                    description,
                }) if run.failures == 1 => Some(super::system::auth_failed(
                    source,
                    error,
                    code.as_deref(),
                    description,
                    run.since,
                    now,
                )),
                // An implausible sweep will not fix itself either: it needs a person now.
                SourceError::Implausible { .. } if !run.announced => Some(failing(&mut run)),
                _ if run.failures == threshold && !run.announced => Some(failing(&mut run)),
                _ => None,
            };
            let mut meta = vec![
                (key, Some(MetaValue::Health(run))),
                (
                    MetaKey::SweepFailed {
                        at: now,
                        source: source.to_string(),
                    },
                    Some(MetaValue::Marker),
                ),
            ];
            meta.extend(
                expired
                    .into_iter()
                    .map(|(at, source)| (MetaKey::SweepFailed { at, source }, None)),
            );
            HealthUpdate { event, meta }
        }
    }
}

/// Failed sweeps logged before this are let go.
pub fn forget_before(now: Timestamp) -> Timestamp {
    now - SWEEP_FAILURES_KEPT
}
