//! The simulator's Partner Insights (ABSS) API, as api-docs/ document v1.3. It answers under
//! `/abss/v1.5/api/` too, with the same v1.3 shapes: the v1.5 shapes are not documented, so
//! this is a stand-in for the path partnerwatch calls by default, not a second version:
//! paged Copilot opportunities (`page` from 1, `pageSize`; `{count, hasMore, items}`), the
//! Copilot summary and the adoption health summary computed from them. Tenants' adoption
//! health and utilization drift on the simulator's clock.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};

use super::referrals::uuid;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::faults::fault_response;
use super::request::{bearer, partner_error, Answer, Audience, Query};
use super::{FaultAction, Shared};

/// The eight adoption health classes as api-docs/abss-partner-insights-api-v1.3.txt spells
/// them ("Adoption Summary: Definitions"), in the order the simulator drifts tenants through
/// them: a tenant moves one step at a time. Spelled here, never taken from the product.
const HEALTH_CLASSES: [&str; 8] = [
    "Healthy",
    "Healthy but Last Month Drop",
    "Healthy but Negative Slope",
    "Starting",
    "Failure to Adopt but Last Month Gain",
    "Big Gain & Big Drop",
    "Failure to Thrive/Adopt",
    "Failure to Launch/Start",
];

/// `class` as a tenant's row spells it under `wording` (`n` picks one of the variants).
pub(super) fn spell_health(class: &str, n: usize, wording: super::HealthWording) -> String {
    use super::HealthWording::*;
    if wording == WithUnknown && class == HEALTH_CLASSES[7] {
        return "Not Yet Launched".into();
    }
    match (wording, n % 3) {
        (Documented, _) | (_, 0) => class.to_string(),
        (_, 1) => class
            .to_lowercase()
            .replace(" & ", " and ")
            .replace('/', " / "),
        _ => class
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect(),
    }
}

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
        "adoptionStatus": HEALTH_CLASSES.choose(rng),
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
    let rank = HEALTH_CLASSES
        .iter()
        .position(|r| *r == status)
        .unwrap_or(3);
    let next = if rng.random_bool(0.5) {
        rank.saturating_sub(1)
    } else {
        (rank + 1).min(HEALTH_CLASSES.len() - 1)
    };
    t["adoptionStatus"] = json!(HEALTH_CLASSES[next]);
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
    for class in HEALTH_CLASSES {
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

const MILESTONES: &[&str] = &[
    "Engagement Initiated",
    "POE Signed",
    "Engagement Completed",
    "Claim Submitted",
    "Claim Approved",
];
const STAGES: &[&str] = &["Initiated", "In Progress", "Completed"];
const PLAYS: &[&str] = &[
    "Copilot and Agents at Work",
    "Converged Communications",
    "Data Security",
    "Modern SecOps with Unified Platform",
];
const REFERRAL_STATUSES: &[&str] = &["Open", "Accepted", "Declined", "Closed"];
const ENGAGEMENTS: &[&str] = &[
    "Copilot Envisioning",
    "Copilot Deployment",
    "Teams Phone Deployment",
];

/// One MCI partner performance row for `tenant`.
pub fn new_mci_row(rng: &mut StdRng, n: u64, tenant: &Value) -> Value {
    json!({
        "stage": STAGES[0],
        "tpidName": tenant["customerName"],
        "tpid": tenant["tpid"],
        "tenantName": tenant["tenantName"],
        "tenantID": tenant["tenantId"],
        "partnerArea": "Modern Work",
        "solutionPlay": PLAYS.choose(rng),
        "claimID": 500_000 + n,
        "engagementName": ENGAGEMENTS.choose(rng),
        "dateInitiated": "2026-10-01T00:00:00Z",
        "poeCompletionDate": null,
        "monthCount": 2.0,
        "monthsSinceCompletion": null,
        "milestone": MILESTONES[0],
        "claimTarget": 100,
        "claimWinFlag": "N",
        "claimAttainment": (rng.random_range(0.0..100.0_f64)).round(),
        "claimRevisedAttainment": null,
        "revenueAttainment": rng.random_range(0.0..50_000.0_f64).round(),
        "quarterlyRevenueTarget": 50_000.0,
        "seatsAttainment": rng.random_range(0.0..500.0_f64).round(),
        "quarterlySeatsTarget": 500.0,
        "totalAttainment": rng.random_range(0.0..100.0_f64).round(),
        "consentFlag": "Y",
        "repeatCustomerFlag": "N"
    })
}

/// One partner referral offered for `tenant`.
pub fn new_partner_referral(rng: &mut StdRng, n: u64, tenant: &Value) -> Value {
    json!({
        "id": n,
        // Nullable, and null on every fourth: the documented integer `id` is then the key.
        "partnerReferralId": if n % 4 == 3 { Value::Null } else { json!(uuid(rng)) },
        "created": "2026-11-20T09:00:00Z",
        "tenantId": tenant["tenantId"],
        "tenantName": tenant["tenantName"],
        "tenantDomain": tenant["tenantHostName"],
        "referralSource": { "id": 1, "name": "Microsoft seller" },
        "workloads": [ { "id": 7, "name": "Microsoft 365 Copilot" } ],
        "claimed": false,
        "partnerReferralNumber": format!("PR-{:06}", n),
        "acceptance": { "id": uuid(rng), "name": "Pending" },
        "declineReason": { "id": uuid(rng), "name": null },
        "referralStatus": { "id": uuid(rng), "name": REFERRAL_STATUSES[0] },
        "valueAddedServicesSold": null,
        "servicesEstimatedValue": { "id": uuid(rng), "name": "$10K - $50K" },
        "referralStage": "New"
    })
}

/// One simulated hour of an MCI row or a partner referral: milestones, stages and statuses
/// move forward now and then. Returns true if it changed.
pub fn advance_one_hour(
    rng: &mut StdRng,
    row: &mut Value,
    field: &str,
    steps: &[&str],
    p: f64,
) -> bool {
    let at = row[field]
        .as_str()
        .and_then(|s| steps.iter().position(|x| *x == s));
    let label = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .or_else(|| v["name"].as_str().map(str::to_string))
    };
    let current = label(&row[field])
        .and_then(|s| steps.iter().position(|x| *x == s))
        .or(at);
    match current {
        Some(i) if i + 1 < steps.len() && rng.random_bool(p) => {
            if row[field].is_object() {
                row[field]["name"] = json!(steps[i + 1]);
            } else {
                row[field] = json!(steps[i + 1]);
            }
            true
        }
        _ => false,
    }
}

/// The MCI steps a row goes through, for [`advance_one_hour`].
pub fn mci_steps() -> (&'static [&'static str], &'static [&'static str]) {
    (MILESTONES, STAGES)
}

/// The statuses a partner referral goes through, for [`advance_one_hour`].
pub fn referral_statuses() -> &'static [&'static str] {
    REFERRAL_STATUSES
}

/// `GET /mci/partnerPerformance/summary`, from the rows.
pub fn mci_summary(rows: &[Value]) -> Value {
    let part = |engagement: &str| {
        let mine: Vec<&Value> = rows
            .iter()
            .filter(|r| r["engagementName"] == engagement)
            .collect();
        let passing = mine
            .iter()
            .filter(|r| r["milestone"] == "Claim Approved")
            .count();
        json!({
            "eligibility": if passing > 0 { "Eligible" } else { "Not eligible" },
            "claimsPercentage": format!("{}%", if mine.is_empty() { 0 } else { passing * 100 / mine.len() }),
            "passingCount": passing,
            "failingCount": mine.len() - passing,
            "totalEngagements": mine.len(),
            "qualifiedEngagements": passing
        })
    };
    json!({
        "copilotDeploy": part("Copilot Deployment"),
        "copilotEnvision": part("Copilot Envisioning"),
        "teamPhoneDeploy": part("Teams Phone Deployment"),
        "teamPhoneEnvision": part("Teams Phone Envisioning")
    })
}

/// The Partner Insights endpoints, under the v1.3 path and the v1.5 path (same shapes).
pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/abss/{version}/api/{*path}", get(abss))
}

/// The Partner Insights endpoints (see [`super::abss`]).
async fn abss(
    State(state): State<Shared>,
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if version != "v1.3" && version != "v1.5" {
        return partner_error(
            StatusCode::NOT_FOUND,
            &format!("API version {version} is not available (v1.3, v1.5)"),
        );
    }
    let query = Query::parse(query.as_deref());
    let param = |name: &str| query.number(name);
    let (answer, delay) = {
        let mut s = state.lock().expect("simulator state lock");
        s.stats.abss_requests += 1;
        // "User Authentication: Api.Access" and "Application (Service Principal)
        // Authentication: Api.Access.Application", for the scope m365partner.microsoft.com.
        let api = Audience {
            audience: "https://m365partner.microsoft.com",
            users_only: false,
        };
        if let Err(refused) = bearer(&s, &headers, &api) {
            s.stats.unauthorized += 1;
            return partner_error(refused.status, refused.message);
        }
        let page = param("page").unwrap_or(1).max(1);
        let body = match path.trim_end_matches('/') {
            "opportunities/copilot" => {
                let order = s.readings.order;
                let rows = s.tenants.clone();
                let rows = in_order(&rows, &query, order, &mut s.rng);
                let (items, count, has_more) = page_of(&rows, page, param("pageSize"));
                let items: Vec<Value> = items
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        // A tenant keeps its spelling from one request to the next.
                        let n = t["tenantId"]
                            .as_str()
                            .map(|id| id.bytes().map(usize::from).sum());
                        if let (Some(class), Some(n)) = (t["adoptionStatus"].as_str(), n) {
                            t["adoptionStatus"] = json!(spell_health(class, n, s.readings.health));
                        }
                        t
                    })
                    .collect();
                json!({ "rfaId": null, "count": count, "hasMore": has_more, "items": items })
            }
            "opportunities/copilot/summary" => super::abss::copilot_summary(&s.tenants),
            "mci/partnerPerformance" => {
                let order = s.readings.order;
                let rows = s.mci_rows.clone();
                let rows = in_order(&rows, &query, order, &mut s.rng);
                let (items, count, has_more) = page_of(&rows, page, param("pageSize"));
                json!({ "partnerPerformanceDetails": { "count": count, "hasMore": has_more, "items": items,
                        "availablePartnerAreas": ["Modern Work"], "availableEngagementNames": [], "availableMilestones": [], "availableStages": [] } })
            }
            "mci/partnerPerformance/summary" => super::abss::mci_summary(&s.mci_rows),
            "partnerReferrals" => {
                let declined = |r: &Value| {
                    ["acceptance", "referralStatus"]
                        .iter()
                        .any(|k| r[k]["name"] == "Declined")
                };
                let listed: Vec<Value> = s
                    .partner_referrals
                    .iter()
                    .filter(|r| {
                        s.readings.declined == super::Declined::Listed
                            || query.get("showDeclinedReferrals") == Some("true")
                            || !declined(r)
                    })
                    .cloned()
                    .collect();
                let order = s.readings.order;
                let rows = in_order(&listed, &query, order, &mut s.rng);
                let (items, count, has_more) = page_of(&rows, page, param("pageSize"));
                json!({ "count": count, "hasMore": has_more, "items": items })
            }
            "opportunities/copilot/adoptionSummary" => super::abss::adoption_summary(&s.tenants),
            // "Retrieves profile and access details for the currently authenticated user".
            "currentUser" => json!({
                "userName": "Simulated Partner Admin", "userEmail": "admin@contoso.example",
                "userId": "3c1e0d7a-0000-4000-8000-000000000001", "tenantId": "contoso-tenant",
                "userType": 1, "isFrp": false, "hasWoboAccess": false, "hasPortalAccess": true
            }),
            other => {
                return partner_error(
                    StatusCode::NOT_FOUND,
                    &format!("no endpoint {other} in the simulator"),
                )
            }
        };
        // "404 Not Found: The resource isn't found or not available with the given input
        // parameters", read as what a partner without such data gets.
        let rows = body
            .get("count")
            .or_else(|| body.pointer("/partnerPerformanceDetails/count"))
            .and_then(Value::as_u64);
        let empty_summary =
            path.contains("ummary") && !path.contains("mci") && s.tenants.is_empty()
                || path.ends_with("mci/partnerPerformance/summary") && s.mci_rows.is_empty();
        if s.readings.no_data == super::NoData::NotFound && (rows == Some(0) || empty_summary) {
            return partner_error(
                StatusCode::NOT_FOUND,
                "The resource isn't found or not available with the given input parameters.",
            );
        }
        match s.take_fault(page as u32) {
            Some(FaultAction::Delay { ms }) => {
                (Answer::Page(body), Some(Duration::from_millis(ms)))
            }
            Some(FaultAction::EmptyPage) => {
                let mut body = body;
                if body.get("items").is_some() {
                    body["items"] = json!([]);
                }
                if let Some(details) = body.get_mut("partnerPerformanceDetails") {
                    details["items"] = json!([]);
                }
                (Answer::Page(body), None)
            }
            Some(fault) => (Answer::Fault(fault), None),
            None => (Answer::Page(body), None),
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match answer {
        Answer::Page(body) => Json(body).into_response(),
        Answer::Fault(fault) => fault_response(
            fault,
            "{\"count\": 3, \"items\": [ {\"tenantId\"",
            |status| {
                // The format block's PascalCase; a 400 with the example's validation map.
                let mut body = json!({ "ErrorStatus": status.as_u16(), "Message": "Injected fault", "DependencyErrorCode": null });
                if status == StatusCode::BAD_REQUEST {
                    body["Message"] = json!("One or more validation errors occurred.");
                    body["Errors"] =
                        json!({ "PageSize": ["The field PageSize must be between 1 and 1000."] });
                }
                (status, Json(body)).into_response()
            },
        ),
        _ => partner_error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected"),
    }
}

/// Page `page` (from 1) of `rows`: (items, total count, whether more follow).
/// The rows of one request in the order it gets them: sorted by `sortColumn` when the rows
/// have it (ties keep their order), otherwise as `order` says.
fn in_order(rows: &[Value], query: &Query, order: super::RowOrder, rng: &mut StdRng) -> Vec<Value> {
    use rand::seq::SliceRandom;
    let mut rows = rows.to_vec();
    let column = query
        .get("sortColumn")
        .filter(|c| rows.iter().any(|r| r.get(*c).is_some()));
    match column {
        Some(column) => {
            let key = |r: &Value| r.get(column).map(|v| v.to_string()).unwrap_or_default();
            rows.sort_by_key(key);
            if query
                .get("sortDirection")
                .is_some_and(|d| d.eq_ignore_ascii_case("desc"))
            {
                rows.reverse();
            }
        }
        None if order == super::RowOrder::ShuffledUnlessSorted => rows.shuffle(rng),
        None => {}
    }
    rows
}

fn page_of(rows: &[Value], page: usize, size: Option<usize>) -> (&[Value], usize, bool) {
    let size = size.unwrap_or(100).clamp(1, 1000);
    let total = rows.len();
    let start = ((page - 1) * size).min(total);
    let end = (start + size).min(total);
    (&rows[start..end], total, end < total)
}
