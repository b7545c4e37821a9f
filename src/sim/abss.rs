//! The simulator's Partner Insights (ABSS) API, under `/abss/v1.3/api/` and `/abss/v1.5/api/`:
//! paged Copilot opportunities (`page` from 1, `pageSize`; `{count, hasMore, items}`), the
//! Copilot summary and the adoption health summary computed from them. Tenants' adoption
//! health and utilization drift on the simulator's clock.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use serde_json::{json, Value};

use crate::detect::copilot::DEFAULT_RANKING;

const TENANTS: &[&str] = &[
    "Contoso Ltd",
    "Fabrikam \"Global\"",
    "Northwind <Traders>",
    "Tailspin Toys 🚀",
    "Woodgrove Bank & Trust",
    "Adatum **Corp**",
    "Litware, Inc.",
    "Proseware\nHoldings",
];
const COUNTRIES: &[&str] = &["US", "DE", "GB", "FR", "AU", "CA"];
const SCENARIOS: &[&str] = &["Acquire", "Monetize", "Grow", "Other"];
const CLAIMS: &[&str] = &[
    "Claimed",
    "ClaimedByOthers",
    "NotClaimed",
    "NotAvailable",
    "Ineligible",
];

fn uuid(rng: &mut StdRng) -> String {
    let v = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 68) as u16 & 0xfff,
        ((v >> 52) as u16 & 0x3fff) | 0x8000,
        v as u64 & 0xffff_ffff_ffff
    )
}

/// One Copilot opportunity, with the fields of the API's definition.
pub fn new_tenant(rng: &mut StdRng, n: u64) -> Value {
    let name = *TENANTS.choose(rng).expect("names");
    let seats = rng.random_range(50..5000);
    let licensed = rng.random_range(0..seats);
    let utilization = (rng.random_range(0.0..100.0_f64) * 10.0).round() / 10.0;
    let penetration = (f64::from(licensed) / f64::from(seats) * 1000.0).round() / 10.0;
    json!({
        "tpid": 1_000_000 + n,
        "customerName": name,
        "customerRenewalDate": "2027-06-30T00:00:00Z",
        "tenantId": uuid(rng),
        "tenantName": format!("{} ({n})", name.lines().next().unwrap_or(name)),
        "tenantCountryRegion": COUNTRIES.choose(rng),
        "tenantHostName": format!("tenant{n}.onmicrosoft.com"),
        "tenantSubsegment": "SMB Commercial",
        "tenantParentSegment": "SMB",
        "licensedMau": licensed,
        "pau": seats,
        "utilizationPercent": utilization,
        "freeMau": rng.random_range(0..seats),
        "allMau": seats,
        "freeToPaidWhitespace": f64::from(seats - licensed),
        "adoptionReadyOpportunity": "Yes",
        "expansionReadyOpportunity": if rng.random_bool(0.5) { "Yes" } else { "No" },
        "eligibleMciEngagements": rng.random_range(0..4),
        "claimStatus": CLAIMS.choose(rng),
        "potentialEarnings": f64::from(rng.random_range(0..50_000)),
        "startingHwm": licensed,
        "priorHwm": licensed,
        "opportunityUnits": seats - licensed,
        "ratePerUnit": 5,
        "maxCompUnits": seats,
        "adoptionStatus": DEFAULT_RANKING.choose(rng),
        "mciPotentialEarnings": f64::from(rng.random_range(0..20_000)),
        "cporPotentialEarnings": null,
        "retentionReasons": null,
        "growthReasons": "Usage growing in Teams & Outlook",
        "cporClaimId": null,
        "advancedDeploymentGuideName": null,
        "advancedDeploymentGuideLink": null,
        "workloadMau": { "teams": licensed, "outlook": licensed, "word": licensed / 2, "excel": licensed / 3, "powerpoint": licensed / 4, "engage": 0, "onenote": 1, "sales": 0 },
        "claimWorkloadLink": null,
        "claimedByOthers": false,
        "resourceName": null,
        "resourceLink": null,
        "extensibility": { "agentsAllUp": { "total": 3.0, "licensed": 2.0, "unlicensed": 1.0 } },
        "copilotTargetingScenario": SCENARIOS.choose(rng),
        "copilotEligibleAllUpSeats": seats,
        "m365CopilotAllUpPenetration": penetration,
        "chatPenetration": penetration,
        "m365CopilotAllUpWhitespace": f64::from(seats - licensed),
        "chatWhitespace": f64::from(seats - licensed),
        "isCpor": false,
        "isCpsp": false
    })
}

/// One simulated hour of a tenant's adoption. Returns true if it changed.
pub fn live_one_hour(rng: &mut StdRng, t: &mut Value) -> bool {
    if !rng.random_bool(0.01) {
        return false;
    }
    let status = t["adoptionStatus"].as_str().unwrap_or("Starting");
    let rank = DEFAULT_RANKING
        .iter()
        .position(|r| *r == status)
        .unwrap_or(3);
    let next = if rng.random_bool(0.5) {
        rank.saturating_sub(1)
    } else {
        (rank + 1).min(DEFAULT_RANKING.len() - 1)
    };
    t["adoptionStatus"] = json!(DEFAULT_RANKING[next]);
    let u = t["utilizationPercent"].as_f64().unwrap_or(50.0) + rng.random_range(-8.0..8.0);
    t["utilizationPercent"] = json!((u.clamp(0.0, 100.0) * 10.0).round() / 10.0);
    true
}

/// `GET /opportunities/copilot/summary`, from the tenants.
pub fn copilot_summary(tenants: &[Value]) -> Value {
    let n = tenants.len().max(1) as f64;
    let avg = |f: &str| {
        (tenants.iter().filter_map(|t| t[f].as_f64()).sum::<f64>() / n * 10.0).round() / 10.0
    };
    let count = |f: &str, v: &str| tenants.iter().filter(|t| t[f] == v).count();
    json!({
        "copilotPipelineCount": tenants.len(),
        "penetrationPercent": avg("m365CopilotAllUpPenetration"),
        "utilizationPercent": avg("utilizationPercent"),
        "expansionReadyCount": count("expansionReadyOpportunity", "Yes"),
        "adoptionReadyCount": count("adoptionReadyOpportunity", "Yes"),
        "atRiskCount": tenants.iter().filter(|t| t["adoptionStatus"].as_str().is_some_and(|s| s.starts_with("Failure"))).count(),
        "blockedCount": 0,
        "incentiveEligibleCount": tenants.iter().filter(|t| t["eligibleMciEngagements"].as_i64().unwrap_or(0) > 0).count(),
        "potentialEarnings": tenants.iter().filter_map(|t| t["potentialEarnings"].as_f64()).sum::<f64>(),
        "acquireCount": count("copilotTargetingScenario", "Acquire"),
        "monetizeCount": count("copilotTargetingScenario", "Monetize"),
        "growCount": count("copilotTargetingScenario", "Grow"),
        "M365Penetration": avg("chatPenetration")
    })
}

/// `GET /opportunities/copilot/adoptionSummary`: tenants per health class.
pub fn adoption_summary(tenants: &[Value]) -> Value {
    let mut out = serde_json::Map::new();
    for class in DEFAULT_RANKING {
        out.insert(
            class.to_string(),
            json!(tenants
                .iter()
                .filter(|t| t["adoptionStatus"] == class)
                .count()),
        );
    }
    Value::Object(out)
}
