//! The referrals section: new, expiring, accepted, won, lost and declined referrals, the
//! longest waiting, and the new referrals of the last weeks for the pipeline chart.

use super::*;

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
    /// Accepted referrals Partner Center says may be registered as deals, not registered yet.
    pub eligible: Vec<ReferralLine>,
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

pub(super) fn referral_line(r: &Value, note: String) -> ReferralLine {
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
pub(super) struct ReferralScan {
    period: Period,
    new: Vec<ReferralLine>,
    expiring: Vec<(Timestamp, ReferralLine)>,
    waiting: Vec<(Timestamp, ReferralLine)>,
    week_starts: Vec<Timestamp>,
    week_counts: Vec<usize>,
}

impl ReferralScan {
    pub(super) fn new(period: Period) -> ReferralScan {
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

    pub(super) fn add(&mut self, r: &Value) {
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
    pub(super) fn weeks(&self) -> Vec<Week> {
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

pub(super) fn referral_section(scan: ReferralScan, events: &[Event]) -> Option<Referrals> {
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
    let mut eligible: BTreeMap<String, ReferralLine> = BTreeMap::new();
    for e in events {
        match e.kind {
            EventKind::ReferralRegistrationEligibility => {
                let registered =
                    !matches!(text(&e.record, "registrationStatus").as_str(), "" | "None");
                if e.data["isEligible"] == true && !registered {
                    eligible.insert(e.entity_id.clone(), referral_line(&e.record, String::new()));
                } else {
                    eligible.remove(&e.entity_id);
                }
            }
            EventKind::ReferralRegistrationChanged => {
                eligible.remove(&e.entity_id);
            }
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
    let mut eligible: Vec<ReferralLine> = eligible.into_values().collect();
    by_value_desc(&mut eligible);
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
        eligible: eligible.into_iter().take(LIST).collect(),
    };
    let empty = section.new_count == 0
        && section.expiring.is_empty()
        && section.accepted.is_empty()
        && section.won.is_empty()
        && section.lost.is_empty()
        && section.declined.is_empty()
        && section.waiting.is_empty()
        && section.eligible.is_empty();
    (!empty).then_some(section)
}
