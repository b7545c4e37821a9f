//! `partnerwatch check`: everything `run` would load, loaded and exercised, nothing started.

use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;
use rand::SeedableRng;

use crate::auth::TokenProvider;
use crate::http::Http;
use crate::model::{Event, EventKind};
use crate::notify::format_for;
use crate::pipeline::Assets;
use crate::sources::referrals::ReferralsSource;

pub fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let http = Http::new(config.http.clone());
    let tokens = TokenProvider::from_config(&config.auth, &config.state_dir).ok();
    crate::notify::build_all(&config.channels, http.client(), tokens.as_ref())?;
    if let Some(referrals) = &config.referrals {
        let tokens = TokenProvider::from_config(&config.auth, &config.state_dir)?;
        ReferralsSource::new(referrals, http.clone(), tokens).map_err(anyhow::Error::msg)?;
    }
    let mut rendered = 0;
    let mut errors = Vec::new();
    for rule in &assets.rules.rules {
        let mut kinds: Vec<EventKind> = rule.kinds.iter().copied().collect();
        kinds.sort();
        for kind in kinds {
            let Some(event) = sample_event(kind) else {
                continue;
            };
            for channel in &rule.channels {
                let format = format_for(&config.channels[channel]);
                let template = rule.template_for(kind);
                match assets.templates.render(&template, format, &event) {
                    Ok(_) => rendered += 1,
                    Err(e) => errors.push(format!(
                        "{}: rule {:?} ({kind} → {channel}): {e}",
                        assets
                            .templates
                            .origin()
                            .join(format!("{template}.{}.hbs", format.suffix()))
                            .display(),
                        rule.name
                    )),
                }
            }
        }
    }
    for digest in &config.digests {
        let sample = crate::digest::Composed::sample(digest, &config.timezone);
        for channel in &digest.channels {
            let format = format_for(&config.channels[channel]);
            match sample.message(&assets.templates, format) {
                Ok(_) => rendered += 1,
                Err(e) => errors.push(format!(
                    "{}: {e} (for channel {channel})",
                    config.file.display()
                )),
            }
        }
    }
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let sources: Vec<String> = config
        .source_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let channels: Vec<String> = config
        .channels
        .iter()
        .map(|(n, c)| format!("{n} ({})", c.type_name()))
        .collect();
    println!("{}: OK", config.file.display());
    println!(
        "  sources:   {}",
        if sources.is_empty() {
            "none".into()
        } else {
            sources.join(", ")
        }
    );
    println!(
        "  channels:  {}",
        if channels.is_empty() {
            "none".into()
        } else {
            channels.join(", ")
        }
    );
    println!(
        "  rules:     {} from {}",
        assets.rules.rules.len(),
        config.rules_dir.display()
    );
    println!(
        "  templates: {} from {}, {rendered} rendering(s) against sample events",
        assets.templates.names().count(),
        config.templates_dir.display()
    );
    for digest in &config.digests {
        let next =
            crate::digest::schedule::Schedule::parse(&digest.schedule, config.timezone.clone())
                .ok()
                .and_then(|s| s.next(Timestamp::now()).map(|n| (s.describe(), n)));
        println!(
            "  digest:    {} → {}{}",
            digest.name,
            digest.channels.join(", "),
            next.map(|(d, n)| format!(
                " · {d} ({}), next {}",
                config.timezone.iana_name().unwrap_or("UTC"),
                n.to_zoned(config.timezone.clone())
                    .strftime("%a %-d %b %Y %H:%M %Z")
            ))
            .unwrap_or_default()
        );
    }
    println!("  state:     {}", config.state_dir.display());
    Ok(ExitCode::SUCCESS)
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
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
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
                    body: String::new(),
                    text: None,
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
            let old = crate::sim::abss::new_tenant(&mut rng, 1);
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
            let tenant = crate::sim::abss::new_tenant(&mut rng, 1);
            let mci = kind.as_str().starts_with("mci.");
            let old = if mci {
                crate::sim::abss::new_mci_row(&mut rng, 1, &tenant)
            } else {
                crate::sim::abss::new_partner_referral(&mut rng, 1, &tenant)
            };
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
            let tenant = crate::sim::abss::new_tenant(&mut rng, 1);
            let old = crate::sim::license::rows_for(&mut rng, &tenant, "2026-11-22").remove(0);
            let mut new = old.clone();
            crate::sim::license::reprocess(&mut rng, std::slice::from_mut(&mut new), "2026-11-23");
            let id = "tenant|product|workload".to_string();
            let script = life(&id, &old, &new);
            return crate::detect::license::detect(script, false, now)
                .into_iter()
                .find(|e| e.kind == kind);
        }
        EventKind::MciSummaryChanged => {
            let tenant = crate::sim::abss::new_tenant(&mut rng, 1);
            let rows: Vec<serde_json::Value> = (0..4)
                .map(|n| {
                    let mut r = crate::sim::abss::new_mci_row(&mut rng, n, &tenant);
                    r["engagementName"] = serde_json::json!("Copilot Deployment");
                    r
                })
                .collect();
            let mut later = rows.clone();
            later[0]["milestone"] = serde_json::json!("Claim Approved");
            let (old, new) = (
                crate::sim::abss::mci_summary(&rows),
                crate::sim::abss::mci_summary(&later),
            );
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
            let tenants: Vec<serde_json::Value> = (0..6)
                .map(|n| crate::sim::abss::new_tenant(&mut rng, n))
                .collect();
            let mut later = tenants.clone();
            later[0]["adoptionStatus"] = serde_json::json!("Failure to Thrive/Adopt");
            later[1]["adoptionStatus"] = serde_json::json!("Healthy");
            let summary = if kind == EventKind::CopilotSummaryChanged {
                crate::sim::abss::copilot_summary
            } else {
                crate::sim::abss::adoption_summary
            };
            let (old, new) = (summary(&tenants), summary(&later));
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
    let old = crate::sim::data::new_referral(
        &mut rng,
        now - jiff::SignedDuration::from_hours(48),
        "https://api.partner.microsoft.com",
    );
    let id = old["id"].as_str().unwrap_or_default().to_string();
    let mut new = old.clone();
    crate::sim::data::transition(&mut rng, &mut new, now, "Closed", "Expired");
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
    use crate::templates::{Format, Templates};

    /// Every event kind of DESIGN §5 has a sample from the real detectors, and its shipped
    /// template renders it in every format.
    #[test]
    fn shipped_templates_render_samples_of_every_event_kind() {
        let templates = Templates::from_sources(
            Path::new("templates"),
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
                assert!(
                    message.body.contains(expected),
                    "{kind} {format:?}: {}",
                    message.body
                );
            }
        }
    }
}
