//! The Referrals API's write side, as api-docs/referrals-update-and-deal-registration.txt and
//! referrals-resources.txt document it, read strictly:
//!
//! - `GET /v1.0/engagements/referrals/{id}`: one referral;
//! - `PATCH /v1.0/engagements/referrals/{id}`: a JSON Patch document of `replace` and `add`
//!   operations only (anything else is 400); `status`/`substatus` must follow the documented
//!   transition table; `If-Match`, when sent, must equal the current `eTag` (412 otherwise);
//!   every change gets a new `eTag`; 204 No Content, or 200 with the referral when the request
//!   says `Prefer: return=representation`;
//! - `POST /v1.0/engagements/referrals/{id}/dealregistrations/eligibility`: the documented
//!   policies, each passed or failed for this referral.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::referrals::{odata_error, touch, REFERRALS_API};
use super::request::bearer;
use super::{Shared, SimState, SimStats};

/// "Status transition & Substatus states" of referrals-resources.txt: from a status, the
/// statuses it may move to; and per status the substatuses it allows.
const TRANSITIONS: &[(&str, &[&str])] = &[
    ("New", &["New", "Active", "Closed"]),
    ("Active", &["Active", "Closed"]),
    ("Closed", &["Closed"]),
];
const SUBSTATUSES: &[(&str, &[&str])] = &[
    ("New", &["Pending", "Received"]),
    ("Active", &["Accepted"]),
    ("Closed", &["Won", "Lost", "Declined", "Expired", "Error"]),
];

/// The paths the update article shows being written (the fields it names: status, substatus,
/// status reason, deal value, close date, notes, team members, registrations).
const WRITABLE: &[&str] = &[
    "/status",
    "/substatus",
    "/statusReason",
    "/details/dealValue",
    "/details/closingDateTime",
    "/details/notes",
    "/team/-",
    "/registrations/-",
];

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/v1.0/engagements/referrals/{id}",
            get(get_referral).patch(patch_referral),
        )
        .route(
            "/v1.0/engagements/referrals/{id}/dealregistrations/eligibility",
            post(referral_eligibility),
        )
}

/// Signs the request in, or answers why not.
fn signed_in(s: &mut SimState, headers: &HeaderMap) -> Result<(), Box<Response>> {
    bearer(s, headers, &REFERRALS_API).map_err(|refused| {
        s.stats.unauthorized += 1;
        let code = refused.status.canonical_reason().unwrap_or("Unauthorized");
        Box::new(odata_error(refused.status, code, refused.message))
    })
}

/// Signs the request in, counts it, and finds the referral `id`; or the answer why not.
fn one_referral<'a>(
    s: &'a mut SimState,
    headers: &HeaderMap,
    id: &str,
    count: fn(&mut SimStats),
) -> Result<&'a Value, Box<Response>> {
    signed_in(s, headers)?;
    count(&mut s.stats);
    s.referrals.iter().find(|r| r["id"] == id).ok_or_else(|| {
        Box::new(odata_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            "no such referral",
        ))
    })
}

async fn get_referral(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    match one_referral(&mut s, &headers, &id, |stats| stats.single_reads += 1) {
        Ok(r) => with_etag(Json(r.clone()).into_response(), r),
        Err(answer) => *answer,
    }
}

fn with_etag(mut response: Response, r: &Value) -> Response {
    if let Some(tag) = r["eTag"].as_str().and_then(|t| t.parse().ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

/// Applies one operation of a JSON Patch document to `r`.
fn apply(r: &mut Value, op: &Value) -> Result<(), String> {
    let kind = op["op"].as_str().unwrap_or_default();
    let path = op["path"].as_str().unwrap_or_default();
    if kind != "replace" && kind != "add" {
        return Err(format!(
            "operation {kind:?} is not supported: only replace and add"
        ));
    }
    if !WRITABLE.contains(&path) {
        return Err(format!("{path:?} cannot be written"));
    }
    let value = op
        .get("value")
        .cloned()
        .ok_or("an operation needs a value")?;
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        [list, "-"] => {
            if kind != "add" {
                return Err(format!("{path:?}: appending is an add"));
            }
            let slot = &mut r[*list];
            if !slot.is_array() {
                *slot = json!([]);
            }
            slot.as_array_mut().expect("array").push(value);
        }
        [field] => r[*field] = value,
        [object, field] => r[*object][*field] = value,
        _ => return Err(format!("{path:?} cannot be written")),
    }
    Ok(())
}

fn allowed(table: &[(&str, &[&str])], key: &str, value: &str) -> bool {
    table
        .iter()
        .find(|(k, _)| *k == key)
        .is_some_and(|(_, values)| values.contains(&value))
}

async fn patch_referral(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (response, delay) = {
        let mut s = state.lock().expect("simulator state lock");
        let delay = s.patch_answer_delay;
        let response = patch_now(&mut s, &id, &headers, &body);
        // Only a PATCH that was applied has its answer held back.
        let applied = response.status().is_success();
        (response, delay.filter(|_| applied))
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

fn patch_now(s: &mut SimState, id: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    if let Err(r) = signed_in(s, headers) {
        return *r;
    }
    s.stats.patches += 1;
    let Ok(Value::Array(ops)) = serde_json::from_slice::<Value>(body) else {
        return odata_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "the body must be a JSON Patch document (an array of operations)",
        );
    };
    let now = s.now;
    let state = s;
    let Some(current) = state.referrals.iter_mut().find(|r| r["id"] == id) else {
        return odata_error(StatusCode::NOT_FOUND, "NotFound", "no such referral");
    };
    if let Some(wanted) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        if current["eTag"].as_str() != Some(wanted) {
            state.stats.conflicts += 1;
            return odata_error(
                StatusCode::PRECONDITION_FAILED,
                "PreconditionFailed",
                "the referral was changed since the eTag was read",
            );
        }
    }
    let mut next = current.clone();
    for op in &ops {
        if let Err(e) = apply(&mut next, op) {
            return odata_error(StatusCode::BAD_REQUEST, "BadRequest", &e);
        }
    }
    let (from, to) = (
        current["status"].as_str().unwrap_or_default(),
        next["status"].as_str().unwrap_or_default(),
    );
    let sub = next["substatus"].as_str().unwrap_or_default();
    if !allowed(TRANSITIONS, from, to) || !allowed(SUBSTATUSES, to, sub) {
        return odata_error(
            StatusCode::BAD_REQUEST,
            "InvalidStatusTransition",
            &format!("{from} cannot move to {to}/{sub}"),
        );
    }
    if sub == "Accepted" && current["substatus"] != "Accepted" {
        next["acceptedDateTime"] = json!(super::referrals::api_time(now));
    }
    touch(&mut state.rng, &mut next, now);
    *current = next.clone();
    state.stats.patches_applied += 1;
    let representation = headers
        .get("prefer")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.contains("return=representation"));
    if representation {
        with_etag(Json(next.clone()).into_response(), &next)
    } else {
        with_etag(StatusCode::NO_CONTENT.into_response(), &next)
    }
}

/// Whether a referral's customer is Microsoft-managed: the simulator decides by the id, so
/// some referrals pass and some fail.
fn customer_managed(r: &Value) -> bool {
    r["id"]
        .as_str()
        .and_then(|id| id.chars().last())
        .is_some_and(|c| c.to_digit(16).is_some_and(|d| d % 4 != 0))
}

/// The solutions the simulator counts as Azure IP co-sell eligible.
const IP_COSELL_SOLUTIONS: &[&str] = &["SOL-CloudMigration", "SOL-ThreatProtection"];

async fn referral_eligibility(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    let r = match one_referral(&mut s, &headers, &id, |stats| stats.eligibility_checks += 1) {
        Ok(r) => r,
        Err(answer) => return *answer,
    };
    let status = (
        r["status"].as_str().unwrap_or_default(),
        r["substatus"].as_str().unwrap_or_default(),
    );
    let solution = r["details"]["requirements"]["solutions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| IP_COSELL_SOLUTIONS.contains(&s["id"].as_str().unwrap_or_default()));
    // "greater than USD 25,000": only a value in USD counts.
    let value = r["details"]["dealValue"]
        .as_f64()
        .or_else(|| {
            r["details"]["dealValue"]
                .as_str()
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0.0);
    let currency = r["details"]["currency"].as_str().unwrap_or_default();
    let policies = [
        (
            "isDealTypeCosellOrPartnerLed",
            r["type"] == "Shared",
            json!({ "type": r["type"] }),
        ),
        (
            "isMicrosoftReferralAcceptedOrWon",
            matches!(status, ("Active", "Accepted") | ("Closed", "Won")),
            json!({ "status": status.0, "substatus": status.1 }),
        ),
        (
            "isSolutionIncentiveEligible",
            solution.is_some(),
            json!({ "solutionId": solution.map(|s| s["id"].clone()), "solutionName": solution.map(|s| s["name"].clone()) }),
        ),
        (
            "isDealValueEligible",
            currency == "USD" && value > 25_000.0,
            json!({ "currency": currency, "dealValue": value.to_string() }),
        ),
        (
            "isCustomerManaged",
            customer_managed(r),
            json!({ "isMatchingComplete": "true" }),
        ),
    ];
    let entry = |(name, ok, props): &(&str, bool, Value)| json!({ "policyName": name, "isEligible": ok, "referralProperties": props });
    let passed: Vec<Value> = policies.iter().filter(|p| p.1).map(entry).collect();
    let failed: Vec<Value> = policies.iter().filter(|p| !p.1).map(entry).collect();
    Json(json!({
        "isEligible": failed.is_empty(),
        "passedPolicies": passed,
        "failedPolicies": failed,
    }))
    .into_response()
}
