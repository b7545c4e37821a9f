//! The MCI section: eligibility per solution play and the milestones reached.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Play {
    /// The solution play in words ("Teams Phone deployment").
    pub play: String,
    /// Its key in the API's summary (`teamPhoneDeploy`).
    pub key: String,
    pub eligibility: String,
    pub passing: i64,
    pub failing: i64,
    pub total: i64,
    pub qualified: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Milestone {
    pub tenant: String,
    pub engagement: String,
    pub from: String,
    pub to: String,
}

#[cfg(test)]
#[test]
fn solution_plays_are_named_in_words() {
    assert_eq!(play_name("copilotDeploy"), "Copilot deployment");
    assert_eq!(play_name("teamPhoneEnvision"), "Teams Phone envisioning");
    assert_eq!(
        play_name("secureProductivityEnvision"),
        "Secure Productivity envisioning"
    );
    assert_eq!(play_name("newThingPilot"), "New thing pilot");
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Mci {
    pub plays: Vec<Play>,
    pub milestones: Vec<Milestone>,
}

/// A solution play's key in the MCI performance summary in words: `copilotDeploy` →
/// "Copilot deployment", `teamPhoneEnvision` → "Teams Phone envisioning"; a key not in the
/// documented list is split at its capitals.
pub fn play_name(key: &str) -> String {
    const AREAS: &[(&str, &str)] = &[
        ("copilot", "Copilot"),
        ("teamPhone", "Teams Phone"),
        ("cloudEndpoint", "Cloud Endpoint"),
        ("secureProductivity", "Secure Productivity"),
    ];
    const STAGES: &[(&str, &str)] = &[("Deploy", "deployment"), ("Envision", "envisioning")];
    for (area, area_words) in AREAS {
        if let Some(stage) = key.strip_prefix(area) {
            if let Some((_, stage_words)) = STAGES.iter().find(|(s, _)| *s == stage) {
                return format!("{area_words} {stage_words}");
            }
        }
    }
    crate::templates::helpers::field(key)
}

pub(super) fn mci_section(store: &Store, events: &[Event]) -> Result<Option<Mci>, StoreError> {
    let mut plays = Vec::new();
    if let Some(summary) = store.records("mci_summary")?.get("mci_summary")? {
        if let Some(obj) = summary.json()?.as_object() {
            for (play, part) in obj {
                if !part.is_object() {
                    continue;
                }
                let n = |k: &str| field(part, k).and_then(Value::as_i64).unwrap_or(0);
                plays.push(Play {
                    play: play_name(play),
                    key: play.clone(),
                    eligibility: text(part, "eligibility"),
                    passing: n("passingCount"),
                    failing: n("failingCount"),
                    total: n("totalEngagements"),
                    qualified: n("qualifiedEngagements"),
                });
            }
        }
    }
    let mut latest: BTreeMap<String, Milestone> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == EventKind::MciMilestoneChanged)
    {
        let from = e.data["from"].as_str().unwrap_or_default().to_string();
        let to = e.data["to"].as_str().unwrap_or_default().to_string();
        latest
            .entry(e.entity_id.clone())
            .and_modify(|m| m.to = to.clone())
            .or_insert(Milestone {
                tenant: tenant_name(&e.record),
                engagement: text(&e.record, "engagementName"),
                from,
                to,
            });
    }
    let milestones: Vec<Milestone> = latest.into_values().filter(|m| m.from != m.to).collect();
    Ok((!plays.is_empty() || !milestones.is_empty()).then_some(Mci { plays, milestones }))
}
