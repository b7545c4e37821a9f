//! What a digest says, computed from the store (the current records) and the event log (what
//! happened in the period). Every section is `None` when it has nothing to say, so templates
//! leave it out rather than show it empty.
//!
//! Must never: count a thing twice (an event detected once is stored once; per record, the
//! net move over the period is what counts).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use serde_json::Value;

use crate::detect::expiry::deadline_of;
use crate::model::event_data::{ActiveLicenses, Closed, EventData, StatusChanged, UsageChanged};
use crate::model::{field, Event, EventKind};
use crate::store::{Store, StoreError};
use crate::templates::helpers::{money, relative};

/// How many items a "top" list shows (largest new, waiting longest, whitespace, drops).
pub const TOP: usize = 5;
/// How many items a full list shows at most (expiring, accepted, won, lost, declined); the
/// rest is counted in its `*_more` field.
pub const LIST: usize = 10;
/// How far ahead "expiring" looks.
pub const EXPIRING_WITHIN: SignedDuration = SignedDuration::from_hours(7 * 24);
/// Weeks in the pipeline chart.
pub const PIPELINE_WEEKS: usize = 8;

/// The period a digest covers: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Period {
    /// The week that ends at `end`.
    pub fn week_to(end: Timestamp) -> Period {
        Period {
            start: end - SignedDuration::from_hours(7 * 24),
            end,
        }
    }

    pub fn contains(&self, t: Timestamp) -> bool {
        self.start <= t && t < self.end
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Content {
    pub referrals: Option<Referrals>,
    pub copilot: Option<Copilot>,
    pub mci: Option<Mci>,
    pub licenses: Option<Licenses>,
    pub health: Option<Health>,
    /// New referrals per week, oldest first (the pipeline chart).
    pub pipeline: Vec<Week>,
}

/// A sum of money in one currency.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Money {
    pub currency: String,
    pub amount: f64,
    pub display: String,
}

/// One referral in a list.
#[derive(Debug, Clone, Serialize)]
pub struct ReferralLine {
    pub id: String,
    pub name: String,
    pub customer: String,
    pub value: String,
    pub amount: f64,
    pub currency: String,
    /// Why it was lost or declined (`statusReason`), a countdown, or an age.
    pub note: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Referrals {
    pub new_count: usize,
    pub new_value: Vec<Money>,
    pub top_new: Vec<ReferralLine>,
    pub expiring: Vec<ReferralLine>,
    pub accepted: Vec<ReferralLine>,
    pub won: Vec<ReferralLine>,
    pub won_value: Vec<Money>,
    pub lost: Vec<ReferralLine>,
    pub declined: Vec<ReferralLine>,
    pub waiting: Vec<ReferralLine>,
    pub expiring_count: usize,
    pub accepted_count: usize,
    pub won_count: usize,
    pub lost_count: usize,
    pub declined_count: usize,
    /// How many of each list were left out for length.
    pub expiring_more: usize,
    pub accepted_more: usize,
    pub won_more: usize,
    pub lost_more: usize,
    pub declined_more: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Week {
    /// The first day of the week, e.g. `Nov 16`.
    pub label: String,
    pub new: usize,
}

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

#[derive(Debug, Clone, Serialize)]
pub struct Drop {
    pub customer: String,
    pub product: String,
    pub workload: String,
    pub from: i64,
    pub to: i64,
    pub delta: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Licenses {
    pub drops: Vec<Drop>,
}

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

/// What the content is computed from besides the store.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub period: Period,
    pub ranking: &'a [String],
    /// The refresh token file, if delegated sign-in is configured.
    pub refresh_file: Option<&'a std::path::Path>,
}

/// Computes the digest's content.
pub fn compute(store: &Store, inputs: &Inputs<'_>) -> Result<Content, StoreError> {
    let period = inputs.period;
    let events: Vec<Event> = store
        .events_since(period.start)?
        .into_iter()
        .filter(|e| period.contains(e.detected_at))
        .collect();
    // One referral at a time: a large pipeline is never held as JSON trees all at once.
    let mut scan = ReferralScan::new(period);
    for item in store.records("referrals")?.iter() {
        scan.add(&item?.1.json()?);
    }
    Ok(Content {
        pipeline: scan.weeks(),
        referrals: referral_section(scan, &events),
        copilot: copilot_section(store, &events, inputs)?,
        mci: mci_section(store, &events)?,
        licenses: license_section(&events),
        health: health_section(store, &events, inputs)?,
    })
}

fn records(store: &Store, dataset: &str) -> Result<Vec<Value>, StoreError> {
    store
        .records(dataset)?
        .iter()
        .map(|item| item.and_then(|(_, r)| r.json()))
        .collect()
}

fn text(r: &Value, name: &str) -> String {
    match field(r, name) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn time(r: &Value, name: &str) -> Option<Timestamp> {
    field(r, name)?.as_str()?.parse().ok()
}

fn referral_line(r: &Value, note: String) -> ReferralLine {
    let details = field(r, "details").cloned().unwrap_or(Value::Null);
    let customer = field(r, "customerProfile")
        .map(|c| text(c, "name"))
        .unwrap_or_default();
    let amount = field(&details, "dealValue")
        .and_then(Value::as_f64)
        .unwrap_or(0.0);
    let currency = text(&details, "currency");
    ReferralLine {
        id: text(r, "id"),
        name: one_line(&text(r, "name")),
        customer: one_line(&customer),
        value: money(&serde_json::json!(amount), &currency),
        amount,
        currency,
        note,
    }
}

/// Sums per currency, largest first.
fn sums(lines: &[ReferralLine]) -> Vec<Money> {
    let mut by: BTreeMap<String, f64> = BTreeMap::new();
    for l in lines {
        *by.entry(l.currency.clone()).or_default() += l.amount;
    }
    let mut out: Vec<Money> = by
        .into_iter()
        .map(|(currency, amount)| Money {
            display: money(&serde_json::json!(amount), &currency),
            currency,
            amount,
        })
        .collect();
    out.sort_by(|a, b| b.amount.total_cmp(&a.amount));
    out
}

fn by_value_desc(lines: &mut [ReferralLine]) {
    lines.sort_by(|a, b| b.amount.total_cmp(&a.amount).then(a.id.cmp(&b.id)));
}

/// What the digest needs of the current referrals, gathered record by record: the week's
/// arrivals, the ones close to their deadline, the ones still waiting, and arrivals per week.
struct ReferralScan {
    period: Period,
    new: Vec<ReferralLine>,
    expiring: Vec<(Timestamp, ReferralLine)>,
    waiting: Vec<(Timestamp, ReferralLine)>,
    week_starts: Vec<Timestamp>,
    week_counts: Vec<usize>,
}

impl ReferralScan {
    fn new(period: Period) -> ReferralScan {
        let week = SignedDuration::from_hours(7 * 24);
        ReferralScan {
            period,
            new: Vec::new(),
            expiring: Vec::new(),
            waiting: Vec::new(),
            week_starts: (0..PIPELINE_WEEKS)
                .rev()
                .map(|i| period.end - week * (i as i32 + 1))
                .collect(),
            week_counts: vec![0; PIPELINE_WEEKS],
        }
    }

    fn add(&mut self, r: &Value) {
        let now = self.period.end;
        let created = time(r, "createdDateTime");
        if let Some(c) = created {
            let week = SignedDuration::from_hours(7 * 24);
            if let Some(i) = self
                .week_starts
                .iter()
                .position(|s| *s <= c && c < *s + week)
            {
                self.week_counts[i] += 1;
            }
            if self.period.contains(c) {
                self.new.push(referral_line(r, String::new()));
            }
        }
        let Some(deadline) = deadline_of(r).filter(|d| *d > now) else {
            return;
        };
        if deadline <= now + EXPIRING_WITHIN {
            let left = relative(deadline.duration_since(now));
            self.expiring
                .push((deadline, referral_line(r, format!("expires {left}"))));
        }
        if let Some(c) = created {
            let age = relative(c.duration_since(now)).replace(" ago", "");
            self.waiting
                .push((c, referral_line(r, format!("waiting {age}"))));
        }
    }

    /// New referrals per week for the [`PIPELINE_WEEKS`] weeks before the period's end.
    fn weeks(&self) -> Vec<Week> {
        self.week_starts
            .iter()
            .zip(&self.week_counts)
            .map(|(s, new)| Week {
                label: s.strftime("%b %d").to_string(),
                new: *new,
            })
            .collect()
    }
}

fn referral_section(scan: ReferralScan, events: &[Event]) -> Option<Referrals> {
    let ReferralScan {
        mut new,
        mut expiring,
        mut waiting,
        ..
    } = scan;
    by_value_desc(&mut new);
    expiring.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));
    waiting.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.id.cmp(&b.1.id)));

    // The last event per referral wins: a status that moved twice counts once.
    let mut accepted: BTreeMap<String, ReferralLine> = BTreeMap::new();
    let mut closed: BTreeMap<String, (String, ReferralLine)> = BTreeMap::new();
    for e in events {
        match e.kind {
            EventKind::ReferralStatusChanged
                if StatusChanged::from_data(&e.data)
                    .is_some_and(|d| d.to_status == "Active" && d.from_status == "New") =>
            {
                accepted.insert(e.entity_id.clone(), referral_line(&e.record, String::new()));
            }
            EventKind::ReferralClosed => {
                let outcome = Closed::from_data(&e.data)
                    .map(|d| d.outcome)
                    .unwrap_or_default();
                let reason = text(&e.record, "statusReason");
                closed.insert(
                    e.entity_id.clone(),
                    (outcome, referral_line(&e.record, reason)),
                );
            }
            _ => {}
        }
    }
    let pick = |outcome: &str| {
        let mut v: Vec<ReferralLine> = closed
            .values()
            .filter(|(o, _)| o.eq_ignore_ascii_case(outcome))
            .map(|(_, l)| l.clone())
            .collect();
        by_value_desc(&mut v);
        v
    };
    let won = pick("Won");
    let mut accepted: Vec<ReferralLine> = accepted.into_values().collect();
    by_value_desc(&mut accepted);
    let (lost, declined) = (pick("Lost"), pick("Declined"));
    let section = Referrals {
        expiring_count: expiring.len(),
        accepted_count: accepted.len(),
        won_count: won.len(),
        lost_count: lost.len(),
        declined_count: declined.len(),
        new_count: new.len(),
        new_value: sums(&new),
        won_value: sums(&won),
        expiring_more: expiring.len().saturating_sub(LIST),
        accepted_more: accepted.len().saturating_sub(LIST),
        won_more: won.len().saturating_sub(LIST),
        lost_more: lost.len().saturating_sub(LIST),
        declined_more: declined.len().saturating_sub(LIST),
        top_new: new.into_iter().take(TOP).collect(),
        expiring: expiring.into_iter().take(LIST).map(|(_, l)| l).collect(),
        accepted: accepted.into_iter().take(LIST).collect(),
        won: won.into_iter().take(LIST).collect(),
        lost: lost.into_iter().take(LIST).collect(),
        declined: declined.into_iter().take(LIST).collect(),
        waiting: waiting.into_iter().take(TOP).map(|(_, l)| l).collect(),
    };
    let empty = section.new_count == 0
        && section.expiring.is_empty()
        && section.accepted.is_empty()
        && section.won.is_empty()
        && section.lost.is_empty()
        && section.declined.is_empty()
        && section.waiting.is_empty();
    (!empty).then_some(section)
}

fn tenant_name(r: &Value) -> String {
    [
        "customerName",
        "tenantName",
        "tpidName",
        "tenantId",
        "tenantID",
    ]
    .iter()
    .map(|k| one_line(&text(r, k)))
    .find(|s| !s.is_empty())
    .unwrap_or_default()
}

/// A name as one line: newlines and runs of spaces in customer data become one space, so a
/// list item stays one item.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn copilot_section(
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
    let status = |r: &Value| text(r, "adoptionStatus");
    // Per tenant: the status before the first move of the period.
    let mut before: HashMap<String, String> = HashMap::new();
    let mut arrived: Vec<String> = Vec::new();
    let mut left: Vec<(String, String)> = Vec::new();
    for e in events {
        match e.kind {
            EventKind::CopilotHealthChanged => {
                let from = e.data["from"].as_str().unwrap_or_default().to_string();
                before.entry(e.entity_id.clone()).or_insert(from);
            }
            EventKind::CopilotNew => arrived.push(e.entity_id.clone()),
            EventKind::CopilotRemoved => {
                let was = e.previous.as_ref().unwrap_or(&e.record);
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
        if !classes.iter().any(|k| k.eq_ignore_ascii_case(c)) {
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

fn mci_section(store: &Store, events: &[Event]) -> Result<Option<Mci>, StoreError> {
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

fn license_section(events: &[Event]) -> Option<Licenses> {
    // Net over the period per row: the first `from`, the last `to`.
    let mut net: BTreeMap<String, Drop> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == EventKind::LicenseUsageChanged)
    {
        let Some(ActiveLicenses {
            from: Some(from),
            to: Some(to),
            ..
        }) = UsageChanged::from_data(&e.data).map(|d| d.licenses_active)
        else {
            continue;
        };
        net.entry(e.entity_id.clone())
            .and_modify(|d| {
                d.to = to;
                d.delta = d.to - d.from;
            })
            .or_insert(Drop {
                customer: tenant_name(&e.record),
                product: text(&e.record, "productName"),
                workload: text(&e.record, "workloadName"),
                from,
                to,
                delta: to - from,
            });
    }
    let mut drops: Vec<Drop> = net.into_values().filter(|d| d.delta < 0).collect();
    drops.sort_by(|a, b| a.delta.cmp(&b.delta).then(a.customer.cmp(&b.customer)));
    drops.truncate(TOP);
    (!drops.is_empty()).then_some(Licenses { drops })
}

/// A refresh token unused this long is close to Entra's 90-day idle limit.
const SIGN_IN_WARN_AFTER: SignedDuration = SignedDuration::from_hours(76 * 24);
const SIGN_IN_IDLE_LIMIT: SignedDuration = SignedDuration::from_hours(90 * 24);

fn health_section(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_left_unused_for_weeks_is_flagged_before_it_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let end: Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
        let file = dir.path().join("refresh_token");
        std::fs::write(&file, "rt").unwrap();
        let ranking: Vec<String> = Vec::new();
        let at = |used_days_ago: i64| {
            let used = end - SignedDuration::from_hours(24 * used_days_ago);
            let f = std::fs::File::options().write(true).open(&file).unwrap();
            f.set_modified(std::time::SystemTime::from(used)).unwrap();
            let inputs = Inputs {
                period: Period::week_to(end),
                ranking: &ranking,
                refresh_file: Some(&file),
            };
            compute(&store, &inputs).unwrap().health
        };
        assert!(at(3).is_none(), "recently used: nothing to say");
        let health = at(80).expect("a warning");
        let warning = health.sign_in.unwrap();
        assert!(warning.contains("lapses in 10 days"), "{warning}");
        assert_eq!(health.sweeps_failed, 0);
    }

    #[test]
    fn names_from_customer_data_stay_on_one_line() {
        let r =
            serde_json::json!({"customerName": "Proseware\nHoldings  \"Ltd\"", "tenantId": "t"});
        assert_eq!(tenant_name(&r), "Proseware Holdings \"Ltd\"");
        let referral = serde_json::json!({"id": "x", "name": "Deal\r\nline two",
            "customerProfile": {"name": "Contoso\nEurope"}, "details": {"dealValue": 5, "currency": "EUR"}});
        let line = referral_line(&referral, String::new());
        assert_eq!(
            (line.name.as_str(), line.customer.as_str()),
            ("Deal line two", "Contoso Europe")
        );
        assert_eq!(line.value, "5 EUR");
    }
}
