//! A realistic event of every kind (DESIGN §5), for `check` to render every template against
//! and for tests of the templates: fixed records (`records.json`, with quotes, markup,
//! newlines and emoji in customer names) fed through the real detectors.
//! Must never: depend on the simulator — the product's samples and the test oracle share
//! nothing.

use std::sync::OnceLock;

use jiff::Timestamp;
use serde_json::Value;

use crate::model::{Event, EventKind};

/// One of the fixed sample records by name.
fn record(name: &str) -> Value {
    static RECORDS: OnceLock<Value> = OnceLock::new();
    let records = RECORDS.get_or_init(|| {
        serde_json::from_str(include_str!("records.json")).expect("the sample records are JSON")
    });
    records
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no sample record {name:?}"))
}

/// The life of one record in a sample script: it appears as `old`, changes to `new`, goes away.
fn life(
    id: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Vec<crate::detect::RecordChange> {
    use crate::detect::RecordChange;
    vec![
        RecordChange::between(id, None, Some((1, old.clone()))),
        RecordChange::between(id, Some((1, old.clone())), Some((2, new.clone()))),
        RecordChange::between(id, Some((2, new.clone())), None),
    ]
}

/// A realistic event of `kind`, for rendering templates without a live API. The events come
/// from the real detectors, fed a generated referral and a scripted change of it.
pub fn sample_event(kind: EventKind) -> Option<Event> {
    use crate::detect::{expiry, referrals};
    let now: Timestamp = "2026-11-23T08:00:00Z".parse().expect("valid time");
    let since = now - jiff::SignedDuration::from_mins(15);
    match kind {
        EventKind::SystemSourceFailing => {
            return Some(crate::detect::system::source_failing(
                "referrals",
                3,
                since,
                "referrals page 2: the server answered 503 Service Unavailable",
                now,
            ))
        }
        EventKind::SystemAuthFailed => {
            return Some(crate::detect::system::auth_failed(
                "referrals",
                "invalid_grant",
                Some("AADSTS700082"),
                "AADSTS700082: The refresh token has expired due to inactivity.",
                since,
                now,
            ))
        }
        EventKind::SystemSourceRecovered => {
            return Some(crate::detect::system::source_recovered(
                "referrals",
                3,
                since,
                now,
            ))
        }
        EventKind::SystemDeliveryDead => {
            let d = crate::model::Delivery {
                id: 42,
                event_id: "e".into(),
                kind: Some(EventKind::ReferralNew),
                rule: "new-referral".into(),
                channel: "sales-teams".into(),
                message: crate::model::Message {
                    title: "New referral: Contoso <\"x\">".into(),
                    body: crate::model::Body::Text {
                        text: String::new(),
                    },
                },
                status: crate::model::DeliveryStatus::Dead,
                attempts: 8,
                created_at: since,
                next_attempt_at: now,
                last_error: Some("404 Not Found: the workflow was deleted".into()),
                sent_at: None,
                images: Vec::new(),
                group: None,
            };
            return Some(crate::detect::system::delivery_dead(&d, now));
        }
        EventKind::CopilotNew
        | EventKind::CopilotChanged
        | EventKind::CopilotRemoved
        | EventKind::CopilotHealthChanged
        | EventKind::CopilotThresholdCrossed => {
            let old = record("tenant");
            let mut new = old.clone();
            new["adoptionStatus"] = serde_json::json!("Failure to Launch/Start");
            new["utilizationPercent"] =
                serde_json::json!(if old["utilizationPercent"].as_f64()? >= 50.0 {
                    10.0
                } else {
                    90.0
                });
            let id = old["tenantId"].as_str()?.to_string();
            let judging = crate::detect::copilot::Judging {
                thresholds: [("utilizationPercent".to_string(), vec![50.0])].into(),
                ..Default::default()
            };
            let script = life(&id, &old, &new);
            let (events, _) =
                crate::detect::copilot::detect(script, false, now, &judging, |_| None);
            return events.into_iter().find(|e| e.kind == kind);
        }
        EventKind::MciNew
        | EventKind::MciChanged
        | EventKind::MciMilestoneChanged
        | EventKind::MciStageChanged
        | EventKind::PartnerReferralNew
        | EventKind::PartnerReferralChanged
        | EventKind::PartnerReferralStatusChanged => {
            let mci = kind.as_str().starts_with("mci.");
            let old = record(if mci { "mci_row" } else { "partner_referral" });
            let mut new = old.clone();
            if mci {
                new["milestone"] = serde_json::json!("Claim Approved");
                new["stage"] = serde_json::json!("Completed");
            } else {
                new["referralStatus"]["name"] = serde_json::json!("Accepted");
            }
            let id = if mci {
                old["claimID"].to_string()
            } else {
                old["partnerReferralId"].as_str()?.to_string()
            };
            let script = life(&id, &old, &new);
            let events = if mci {
                crate::detect::insights::detect_mci(script, false, now)
            } else {
                crate::detect::insights::detect_partner_referrals(script, false, now)
            };
            return events.into_iter().find(|e| e.kind == kind);
        }
        EventKind::LicenseNew | EventKind::LicenseUsageChanged => {
            let (old, new) = (record("license_old"), record("license_new"));
            let id = "tenant|product|workload".to_string();
            let script = life(&id, &old, &new);
            return crate::detect::license::detect(script, false, now)
                .into_iter()
                .find(|e| e.kind == kind);
        }
        EventKind::MciSummaryChanged => {
            let (old, new) = (record("mci_summary_old"), record("mci_summary_new"));
            let change =
                crate::detect::RecordChange::between("mci_summary", Some((1, old)), Some((2, new)));
            return crate::detect::copilot::detect_summary(
                kind,
                "mci_summary",
                vec![change],
                false,
                now,
            )
            .into_iter()
            .next();
        }
        EventKind::CopilotSummaryChanged | EventKind::AdoptionSummaryChanged => {
            let name = if kind == EventKind::CopilotSummaryChanged {
                "copilot_summary"
            } else {
                "adoption_summary"
            };
            let (old, new) = (
                record(&format!("{name}_old")),
                record(&format!("{name}_new")),
            );
            let change = crate::detect::RecordChange::between(
                kind.as_str().replace(".changed", ""),
                Some((1, old)),
                Some((2, new)),
            );
            return crate::detect::copilot::detect_summary(
                kind,
                "partner insights",
                vec![change],
                false,
                now,
            )
            .into_iter()
            .next();
        }
        _ => {}
    }
    let old = record("referral_old");
    let id = old["id"].as_str().unwrap_or_default().to_string();
    let mut new = record("referral_new");
    new["registrationStatus"] = serde_json::json!("Approved");
    let script = life(&id, &old, &new);
    let mut events = Vec::new();
    for change in &script {
        events.extend(referrals::detect(vec![change.clone()], false, now));
    }
    let deadline = expiry::deadline_of(&old)?;
    let states = std::collections::BTreeMap::from([(
        id.clone(),
        expiry::ExpiryState {
            deadline,
            fired: Vec::new(),
        },
    )]);
    let hours_before = deadline - jiff::SignedDuration::from_hours(20);
    events.extend(
        expiry::evaluate(&states, &expiry::DEFAULT_THRESHOLDS, hours_before, |_| {
            Some(old.clone())
        })
        .0,
    );
    events.into_iter().find(|e| e.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Format;
    use crate::templates::Templates;

    /// Every event kind of DESIGN §5 has a sample from the real detectors, and its shipped
    /// template renders it in every format.
    #[test]
    fn shipped_templates_render_samples_of_every_event_kind() {
        let templates = Templates::from_sources(
            std::path::Path::new("templates"),
            crate::shipped::templates(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap();
        for kind in EventKind::ALL {
            let event = sample_event(*kind).unwrap_or_else(|| panic!("no sample for {kind}"));
            assert_eq!(event.kind, *kind);
            for format in Format::ALL {
                let message = templates
                    .render(&kind.default_template(), format, &event)
                    .unwrap();
                // Summaries are about the partner, not one record: they list what moved.
                let expected = if kind.as_str().ends_with("summary.changed") {
                    "→"
                } else {
                    event.entity_id.as_str()
                };
                let body = message.body.raw();
                assert!(body.contains(expected), "{kind} {format:?}: {body}");
            }
        }
    }
}
