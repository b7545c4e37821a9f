//! `partnerwatch check`: everything `run` would load, loaded and exercised, nothing started.

use std::path::Path;
use std::process::ExitCode;

use jiff::Timestamp;
use rand::SeedableRng;

use crate::auth::TokenProvider;
use crate::http::Http;
use crate::model::{Change, Event, EventKind};
use crate::notify::format_for;
use crate::pipeline::Assets;
use crate::sources::referrals::ReferralsSource;

pub fn check(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let http = Http::new(config.http.clone());
    crate::notify::build_all(&config.channels, http.client())?;
    if let Some(referrals) = &config.referrals {
        let tokens = TokenProvider::from_config(&config.auth)?;
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
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        return Ok(ExitCode::FAILURE);
    }
    let sources: Vec<String> = config
        .referrals
        .iter()
        .map(|r| format!("referrals every {}", r.every))
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
    println!("  state:     {}", config.state_dir.display());
    Ok(ExitCode::SUCCESS)
}

/// A realistic event of `kind`, for rendering templates without a live API.
pub fn sample_event(kind: EventKind) -> Option<Event> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let now: Timestamp = "2026-11-23T08:00:00Z".parse().expect("valid time");
    let record = crate::sim::data::new_referral(
        &mut rng,
        now - jiff::SignedDuration::from_hours(48),
        "https://api.partner.microsoft.com",
    );
    let entity_id = record["id"].as_str().unwrap_or_default().to_string();
    let (previous, changes) = match kind {
        EventKind::ReferralNew | EventKind::ReferralRemoved => (None, Vec::new()),
        EventKind::ReferralChanged => {
            let mut old = record.clone();
            old["details"]["dealValue"] = serde_json::json!(1000);
            let changes = crate::detect::diff::changes(&old, &record);
            (Some(old), changes)
        }
        _ => return None,
    };
    let _: &Vec<Change> = &changes;
    Some(Event {
        id: "sample".into(),
        kind,
        source: "referrals".into(),
        entity_id,
        detected_at: now,
        record,
        previous,
        changes,
        data: serde_json::json!({}),
    })
}
