//! When a digest goes out: its slots on the cron schedule, each taken once — the slot's marker
//! is written in the same transaction as its deliveries, so a crash before or after the commit
//! sends it exactly once.

use jiff::Timestamp;

use super::{compose, DigestError, DigestInputs};
use crate::config::DigestConfig;

/// The slot key of a scheduled digest: its name and the slot's instant.
pub fn slot_key(name: &str, slot: Timestamp) -> String {
    format!("{name}/{slot}")
}

/// What [`enqueue_due`] did for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub name: String,
    pub slot: Timestamp,
    pub deliveries: usize,
}

/// Queues every digest whose slot is due (passed less than a day ago) and not yet taken. The
/// slot marker and the deliveries are stored together, so a crash either before or after the
/// commit sends the digest exactly once.
pub fn enqueue_due(
    inputs: &DigestInputs<'_>,
    now: Timestamp,
) -> Result<Vec<Enqueued>, DigestError> {
    let mut out = Vec::new();
    for digest in inputs.digests {
        let Some(slot) = digest.slots.due(now) else {
            continue;
        };
        let key = slot_key(&digest.name, slot);
        if inputs.store.digest_sent(&key)? {
            continue;
        }
        // The content is as of the slot, even when it is sent late.
        let composed = compose(inputs, digest, slot)?;
        let deliveries = composed.deliveries(
            inputs.templates,
            inputs.channels,
            digest,
            &format!("digest:{key}"),
            now,
        )?;
        if inputs.store.commit_digest(Some(&key), now, &deliveries)? {
            tracing::info!(digest = %digest.name, %slot, deliveries = deliveries.len(), "digest queued");
            out.push(Enqueued {
                name: digest.name.clone(),
                slot,
                deliveries: deliveries.len(),
            });
        }
    }
    Ok(out)
}

/// Finds a configured digest by name.
pub fn find<'a>(digests: &'a [DigestConfig], name: &str) -> Result<&'a DigestConfig, DigestError> {
    digests.iter().find(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = digests.iter().map(|d| d.name.as_str()).collect();
        DigestError::Unknown(
            name.to_string(),
            if names.is_empty() {
                "none configured; add a `digests:` entry".into()
            } else {
                names.join(", ")
            },
        )
    })
}
