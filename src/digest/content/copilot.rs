//! The Copilot section: adoption health now and a week ago, the tenants that moved (net over
//! the week), and the largest free-to-paid whitespace.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct HealthCount {
    pub status: String,
    pub now: usize,
    pub week_ago: usize,
    /// `+2`, `-1` or empty.
    pub delta: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Move {
    pub tenant: String,
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Whitespace {
    pub tenant: String,
    pub whitespace: f64,
    /// The seats, grouped: `2,780`.
    pub seats: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Copilot {
    pub tenants: usize,
    /// False when the first sweep of the dataset is younger than the period.
    pub has_week_ago: bool,
    pub distribution: Vec<HealthCount>,
    pub worse: Vec<Move>,
    pub better: Vec<Move>,
    pub whitespace: Vec<Whitespace>,
}

pub(super) fn copilot_section(
    store: &Store,
    events: &[Event],
    inputs: &Inputs<'_>,
) -> Result<Option<Copilot>, StoreError> {
    let tenants = records(store, "copilot")?;
    if tenants.is_empty() {
        return Ok(None);
    }
    let has_week_ago = store
        .baseline_at("copilot")?
        .is_some_and(|b| b <= inputs.period.start);
    // One spelling per class (the ranking's), however the API spelled it.
    let canonical = |s: &str| crate::detect::copilot::canonical(inputs.ranking, s);
    let status = |r: &Value| canonical(&text(r, "adoptionStatus"));
    // Per tenant: the status before the first move of the period.
    let mut before: HashMap<String, String> = HashMap::new();
    let mut arrived: Vec<String> = Vec::new();
    let mut left: Vec<(String, String)> = Vec::new();
    for e in events {
        match e.kind {
            EventKind::CopilotHealthChanged => {
                let from = canonical(e.data["from"].as_str().unwrap_or_default());
                before.entry(e.entity_id.clone()).or_insert(from);
            }
            EventKind::CopilotNew => arrived.push(e.entity_id.clone()),
            EventKind::CopilotRemoved => {
                let was = e.previous.as_deref().unwrap_or(&e.record);
                left.push((e.entity_id.clone(), status(was)));
            }
            _ => {}
        }
    }
    let mut now_counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut then_counts: BTreeMap<String, usize> = BTreeMap::new();
    let rank = |s: &str| crate::detect::copilot::rank(inputs.ranking, s);
    let (mut worse, mut better) = (Vec::new(), Vec::new());
    for r in &tenants {
        let id = ["tenantId", "tenantID"]
            .iter()
            .map(|k| text(r, k))
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        let now = status(r);
        *now_counts.entry(now.clone()).or_default() += 1;
        if arrived.contains(&id) {
            continue;
        }
        let then = before.get(&id).cloned().unwrap_or_else(|| now.clone());
        *then_counts.entry(then.clone()).or_default() += 1;
        if then != now {
            let m = Move {
                tenant: tenant_name(r),
                from: then.clone(),
                to: now.clone(),
            };
            match (rank(&then), rank(&now)) {
                (Some(a), Some(b)) if b > a => worse.push(m),
                (Some(a), Some(b)) if b < a => better.push(m),
                _ => {}
            }
        }
    }
    for (_, was) in left {
        *then_counts.entry(was).or_default() += 1;
    }
    // The ranking's order first, then any class the API added.
    let mut classes: Vec<String> = inputs.ranking.to_vec();
    for c in now_counts.keys().chain(then_counts.keys()) {
        if !classes.contains(c) {
            classes.push(c.clone());
        }
    }
    let distribution = classes
        .into_iter()
        .filter_map(|c| {
            let now = now_counts.get(&c).copied().unwrap_or(0);
            let then = if has_week_ago {
                then_counts.get(&c).copied().unwrap_or(0)
            } else {
                0
            };
            (now + then > 0).then(|| HealthCount {
                delta: match now as i64 - then as i64 {
                    d if !has_week_ago || d == 0 => String::new(),
                    d if d > 0 => format!("+{d}"),
                    d => d.to_string(),
                },
                status: if c.is_empty() { "(none)".into() } else { c },
                now,
                week_ago: then,
            })
        })
        .collect();
    let mut whitespace: Vec<Whitespace> = tenants
        .iter()
        .filter_map(|r| {
            let w = field(r, "freeToPaidWhitespace")?.as_f64()?;
            (w > 0.0).then(|| Whitespace {
                tenant: tenant_name(r),
                whitespace: w,
                seats: money(&serde_json::json!(w), ""),
            })
        })
        .collect();
    whitespace.sort_by(|a, b| {
        b.whitespace
            .total_cmp(&a.whitespace)
            .then(a.tenant.cmp(&b.tenant))
    });
    whitespace.truncate(TOP);
    let sort = |v: &mut Vec<Move>| v.sort_by(|a, b| a.tenant.cmp(&b.tenant));
    sort(&mut worse);
    sort(&mut better);
    Ok(Some(Copilot {
        tenants: tenants.len(),
        has_week_ago,
        distribution,
        worse,
        better,
        whitespace,
    }))
}
