//! The section about partnerwatch itself: failed sweeps, dead letters, sign-in failures, and
//! a refresh token left unused long enough to lapse.

use super::*;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    pub sweeps_failed: u64,
    /// `referrals: 3` per source that failed.
    pub failed_by_source: Vec<String>,
    pub dead_letters: usize,
    /// Sign-in failures with Entra's code.
    pub auth_failures: Vec<String>,
    /// A warning that the stored sign-in will lapse unless used.
    pub sign_in: Option<String>,
}

/// A refresh token unused this long is close to Entra's 90-day idle limit.
const SIGN_IN_WARN_AFTER: SignedDuration = SignedDuration::from_hours(76 * 24);

const SIGN_IN_IDLE_LIMIT: SignedDuration = SignedDuration::from_hours(90 * 24);

pub(super) fn health_section(
    store: &Store,
    events: &[Event],
    inputs: &Inputs<'_>,
) -> Result<Option<Health>, StoreError> {
    let failures = store.sweep_failures(inputs.period.start, inputs.period.end)?;
    let mut by_source: BTreeMap<String, u64> = BTreeMap::new();
    for (_, source) in &failures {
        *by_source.entry(source.clone()).or_default() += 1;
    }
    let auth_failures: Vec<String> = events
        .iter()
        .filter(|e| e.kind == EventKind::SystemAuthFailed)
        .map(|e| {
            format!(
                "{}: {}",
                e.source,
                e.data["code"]
                    .as_str()
                    .or(e.data["error"].as_str())
                    .unwrap_or("sign-in failed")
            )
        })
        .collect();
    let sign_in = inputs
        .refresh_file
        .and_then(|f| std::fs::metadata(f).ok()?.modified().ok())
        .and_then(|m| Timestamp::try_from(m).ok())
        .filter(|used| inputs.period.end.duration_since(*used) > SIGN_IN_WARN_AFTER)
        .map(|used| {
            format!(
                "the stored sign-in lapses {} unless partnerwatch uses it; run `partnerwatch login`",
                relative((used + SIGN_IN_IDLE_LIMIT).duration_since(inputs.period.end))
            )
        });
    let health = Health {
        sweeps_failed: failures.len() as u64,
        failed_by_source: by_source
            .into_iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect(),
        dead_letters: events
            .iter()
            .filter(|e| e.kind == EventKind::SystemDeliveryDead)
            .count(),
        auth_failures,
        sign_in,
    };
    let quiet = health.sweeps_failed == 0
        && health.dead_letters == 0
        && health.auth_failures.is_empty()
        && health.sign_in.is_none();
    Ok((!quiet).then_some(health))
}
