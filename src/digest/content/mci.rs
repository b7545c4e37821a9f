//! The MCI section: eligibility per solution play and the milestones reached.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct Play {
    pub play: String,
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

#[derive(Debug, Clone, Default, Serialize)]
pub struct Mci {
    pub plays: Vec<Play>,
    pub milestones: Vec<Milestone>,
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
                    play: play.clone(),
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
