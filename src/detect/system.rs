//! Events about partnerwatch itself, for an admin channel: a source failing several sweeps in
//! a row and recovering, and a delivery given up on. (`system.auth_failed` comes with the
//! Entra ID sign-in.) The errors they quote pass through the redaction layer: an admin channel
//! never gets a secret a far end echoed.

use jiff::Timestamp;
use serde_json::json;

use crate::config::secret::redact;
use crate::model::event::event_id;
use crate::model::{Delivery, Event, EventKind};

fn event(
    kind: EventKind,
    entity: &str,
    stamp: &str,
    now: Timestamp,
    data: serde_json::Value,
) -> Event {
    Event {
        id: event_id(&[
            kind.as_str().as_bytes(),
            entity.as_bytes(),
            stamp.as_bytes(),
        ]),
        kind,
        source: "partnerwatch".into(),
        entity_id: entity.to_string(),
        detected_at: now,
        record: data.clone().into(),
        previous: None,
        changes: Vec::new(),
        data,
    }
}

/// `system.source_failing`: `source` has failed `failures` sweeps in a row since `since`.
pub fn source_failing(
    source: &str,
    failures: u32,
    since: Timestamp,
    error: &str,
    now: Timestamp,
) -> Event {
    event(
        EventKind::SystemSourceFailing,
        source,
        &since.to_string(),
        now,
        json!({ "source": source, "failures": failures, "since": since.to_string(), "error": redact(error) }),
    )
}

/// `system.source_recovered`: `source` completed a sweep after failing since `since`.
pub fn source_recovered(source: &str, failures: u32, since: Timestamp, now: Timestamp) -> Event {
    event(
        EventKind::SystemSourceRecovered,
        source,
        &since.to_string(),
        now,
        json!({ "source": source, "failures": failures, "since": since.to_string() }),
    )
}

/// `system.delivery_dead`: a delivery was dead-lettered.
pub fn delivery_dead(d: &Delivery, now: Timestamp) -> Event {
    event(
        EventKind::SystemDeliveryDead,
        &d.id.to_string(),
        &d.created_at.to_string(),
        now,
        json!({
            "delivery": d.id,
            "rule": d.rule,
            "channel": d.channel,
            "event_kind": d.what(),
            "title": d.message.title,
            "attempts": d.attempts,
            "error": d.last_error.as_deref().map(redact),
        }),
    )
}

/// `system.auth_failed`: signing in for `source` failed (a refresh token expired after 90 days
/// idle, MFA now required, a secret expired); `code` is Entra's AADSTS code.
pub fn auth_failed(
    source: &str,
    error: &str,
    code: Option<&str>,
    description: &str,
    since: Timestamp,
    now: Timestamp,
) -> Event {
    event(
        EventKind::SystemAuthFailed,
        source,
        &since.to_string(),
        now,
        json!({ "source": source, "error": redact(error), "code": code, "description": redact(description), "since": since.to_string() }),
    )
}
