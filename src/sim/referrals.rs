//! Generated referrals that look like the real thing: every property of the Referral
//! resource (api-docs/referrals-resources.txt), enum values from the docs, and customer names
//! and notes full of the characters that break naive messages — quotes, HTML, Markdown,
//! newlines and emoji. Their life follows the documented status transitions on the
//! simulator's clock: New → Active/Accepted → Closed/Won|Lost, New → Closed/Declined, and
//! New → Closed/Expired 14 days after arrival if nobody answered.
//!
//! Here too: the list endpoint (`GET /v1.0/engagements/referrals`) and the `/_sim/referrals`
//! controls that add, change and delete referrals.

use jiff::{SignedDuration, Timestamp};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use serde_json::{json, Map, Value};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::faults::fault_response;
use super::odata::{Filter, OrderBy};
use super::request::{bearer, Answer, Audience, Query};
use super::{Cursor, FaultAction, Shared, SimState};

/// The documented response window.
pub const RESPONSE_WINDOW: SignedDuration = SignedDuration::from_hours(14 * 24);

const CUSTOMERS: &[&str] = &[
    "Fabrikam Customer Inc",
    "Contoso Pharmaceuticals",
    "O'Brien & Sons \"Premium\" Ltd.",
    "<script>alert('x')</script> Widgets",
    "**Northwind** _Traders_ [sale](http://example.com)",
    "Café Lumière 🚀 GmbH",
    "Tailspin Toys <b>Europe</b>",
    "Wide World Importers",
    "Adventure Works Cycles",
    "Alpine Ski House — Zürich",
    "Woodgrove Bank & Trust",
    "Litware, Inc.",
    "Proseware `code` Systems",
    "Lamna Healthcare 🏥",
    "Trey Research\nNew Line Division",
    "Coho Winery 🍷 \"Reserve\"",
];

const NOTES: &[&str] = &[
    "We are interested in deploying Microsoft 365 and are looking for support in training our employees. Can you help?",
    "Customer wants a Copilot pilot for 250 seats.\nBudget approved for Q3.\n- Teams Phone\n- Intune",
    "Migrating 40 VMs to Azure; \"lift & shift\" first, then modernise. <i>Urgent</i>.",
    "Needs help with **Dynamics 365 Sales**; see https://contoso.example/rfp?id=7&x=<y>",
    "Security review after an incident 😬 — Defender + Sentinel.",
    "",
];

const CITIES: &[(&str, &str, &str, &str)] = &[
    ("Redmond", "WA", "98052", "US"),
    ("Berlin", "BE", "10115", "DE"),
    ("London", "", "EC1A 1BB", "GB"),
    ("Paris", "", "75001", "FR"),
    ("Sydney", "NSW", "2000", "AU"),
    ("Toronto", "ON", "M5H 2N2", "CA"),
];

const PRODUCTS: &[&str] = &[
    "Azure",
    "Microsoft365",
    "Dynamics365Enterprise",
    "Teams",
    "PowerBI",
    "SQL",
    "Windows",
    "Surface",
];
const SERVICES: &[&str] = &[
    "ConsultingAndProfessional",
    "DeploymentOrMigration",
    "LearningAndCertification",
    "ManagedServices",
    "Licensing",
];
const INDUSTRIES: &[&str] = &[
    "Education",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail & Consumer Goods",
    "Government",
];
const SOLUTIONS: &[(&str, &str)] = &[
    ("SOL-Microsoft365", "Microsoft365"),
    ("SOL-CloudMigration", "CloudMigration"),
    ("SOL-ThreatProtection", "ThreatProtection"),
    ("SOL-Dynamics365forSales", "Dynamics365forSales"),
];
const SIZES: &[&str] = &[
    "1to50employees",
    "51to500employees",
    "Morethan500employees",
    "251to1000employees",
    "1001to5000employees",
];
const CURRENCIES: &[&str] = &["USD", "EUR", "GBP"];
const FIRST: &[&str] = &[
    "Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gus", "Hana",
];
const LAST: &[&str] = &["Müller", "O'Neil", "Smith", "Nakamura", "García", "Okafor"];
const LOST_REASONS: &[&str] = &[
    "Customer chose a competitor",
    "Budget cut",
    "No response from customer",
    "Timing: project postponed",
];

/// The Partner Center wire form of a time: `2020-10-30T21:03:00.0000000Z`.
pub fn api_time(t: Timestamp) -> String {
    format!("{}.0000000Z", t.strftime("%Y-%m-%dT%H:%M:%S"))
}

/// Reads an API time back.
pub fn parse_api_time(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// A random v4-shaped UUID.
pub fn uuid(rng: &mut StdRng) -> String {
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

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    items.choose(rng).expect("non-empty list")
}

fn member(rng: &mut StdRng, domain: &str) -> Value {
    let first = pick(rng, FIRST);
    let last = pick(rng, LAST);
    json!({
        "firstName": first,
        "lastName": last,
        "phoneNumber": format!("+1 425 555 {:04}", rng.random_range(0..10_000)),
        "email": format!("{}.{}@{domain}", first.to_lowercase(), last.to_lowercase().replace('\'', "")),
        "contactPreference": { "locale": "en-US", "disableNotifications": rng.random_bool(0.1) }
    })
}

/// A fresh referral that arrived at `created`, in state New/Pending.
pub fn new_referral(rng: &mut StdRng, created: Timestamp, base_url: &str) -> Value {
    let id = uuid(rng);
    let engagement = uuid(rng);
    let customer = *pick(rng, CUSTOMERS);
    let (city, state, postal, country) = *pick(rng, CITIES);
    let incoming = rng.random_bool(0.85);
    let shared = rng.random_bool(0.6);
    let (sol_id, sol_name) = *pick(rng, SOLUTIONS);
    let currency = *pick(rng, CURRENCIES);
    let deal_value = rng.random_range(1..200) * 1000;
    let closing = created + SignedDuration::from_hours(24 * rng.random_range(30..180));
    let qualification = *pick(
        rng,
        &["Direct", "MarketingQualified", "SalesQualified", "None"],
    );
    let invited_by = if shared {
        json!({ "organizationId": uuid(rng), "organizationName": "Microsoft" })
    } else {
        json!({ "organizationId": uuid(rng), "organizationName": "Litware Partner Co. \"LPC\"" })
    };
    json!({
        "id": id,
        "engagementId": engagement,
        "organizationId": "7d23e5ca-19dc-4eaa-aac8-5e6b559f0d1d",
        "organizationName": "Contoso Company",
        "name": format!("{} – {}", customer.lines().next().unwrap_or(customer), sol_name),
        "externalReferenceId": format!("D365-{:06}", rng.random_range(0..1_000_000)),
        "createdDateTime": api_time(created),
        "updatedDateTime": api_time(created),
        "expirationDateTime": api_time(created + RESPONSE_WINDOW),
        "acceptedDateTime": null,
        "status": "New",
        "substatus": if incoming { "Pending" } else { "Received" },
        "statusReason": null,
        "type": if shared { "Shared" } else { "Independent" },
        "qualification": qualification,
        "direction": if incoming { "Incoming" } else { "Outgoing" },
        "referralSource": null,
        "callToAction": null,
        "customerProfile": {
            "name": customer,
            "address": {
                "addressLine1": "One Microsoft Way",
                "addressLine2": "",
                "city": city,
                "state": state,
                "postalCode": postal,
                "country": country,
                "region": null
            },
            "size": pick(rng, SIZES),
            "team": [member(rng, "customer.example")],
            "ids": { "external": format!("CUST-{}", rng.random_range(1000..9999)) }
        },
        "consent": {
            "consentToToShareInfoWithOthers": rng.random_bool(0.7),
            "consentToContact": true,
            "consentToShareReferralWithMicrosoftSellers": rng.random_bool(0.8),
            "consentToMicrosoftToContactSpecificPartners": rng.random_bool(0.5)
        },
        "details": {
            "notes": pick(rng, NOTES),
            "dealValue": deal_value,
            "currency": currency,
            "closingDateTime": api_time(closing),
            "requirements": {
                "industries": [ { "id": pick(rng, INDUSTRIES) } ],
                "products": [ { "id": pick(rng, PRODUCTS) } ],
                "services": [ { "id": pick(rng, SERVICES) } ],
                "solutions": [ { "id": sol_id, "name": sol_name, "type": "Category", "solutionType": "1P", "publisherName": "Microsoft" } ],
                "offers": [],
                "additionalRequirements": { "attributes": [ { "id": pick(rng, &["Yes", "No", "HaveNotDecided"]), "type": "CustomerMarketplaceIntent" } ] }
            }
        },
        "team": [member(rng, "contoso.example")],
        "inviteContext": { "notes": "Please engage quickly — customer is \"ready to buy\".", "invitedBy": invited_by },
        "eTag": format!("\"{:016x}\"", rng.next_u64()),
        "target": { "id": uuid(rng), "type": "SolutionProfile" },
        "mpnId": format!("{}", rng.random_range(1_000_000..9_999_999)),
        "registrationStatus": "None",
        "registrations": [],
        "links": {
            "relatedReferrals": { "uri": format!("{base_url}/v1.0/engagements/referrals?$filter=engagementId eq '{engagement}'"), "method": "GET" },
            "self": { "uri": format!("{base_url}/v1.0/engagements/referrals/{id}"), "method": "GET" }
        }
    })
}

fn set(r: &mut Value, key: &str, value: Value) {
    if let Some(obj) = r.as_object_mut() {
        obj.insert(key.to_string(), value);
    }
}

fn str_field<'a>(r: &'a Value, key: &str) -> &'a str {
    r.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Marks a referral as updated at `now`: new `updatedDateTime` and `eTag`.
pub fn touch(rng: &mut StdRng, r: &mut Value, now: Timestamp) {
    set(r, "updatedDateTime", json!(api_time(now)));
    set(r, "eTag", json!(format!("\"{:016x}\"", rng.next_u64())));
}

/// Moves a referral to `status`/`substatus` at `now`.
pub fn transition(rng: &mut StdRng, r: &mut Value, now: Timestamp, status: &str, substatus: &str) {
    set(r, "status", json!(status));
    set(r, "substatus", json!(substatus));
    if substatus == "Accepted" {
        set(r, "acceptedDateTime", json!(api_time(now)));
    }
    if substatus == "Lost" || substatus == "Declined" {
        set(r, "statusReason", json!(pick(rng, LOST_REASONS)));
    }
    touch(rng, r, now);
}

/// One simulated hour in the life of a referral ending at `now`. Returns true if it changed.
pub fn live_one_hour(rng: &mut StdRng, r: &mut Value, now: Timestamp) -> bool {
    let status = str_field(r, "status").to_string();
    match status.as_str() {
        "New" => {
            let deadline = r
                .get("expirationDateTime")
                .and_then(Value::as_str)
                .and_then(parse_api_time);
            if deadline.is_some_and(|d| d <= now) {
                transition(rng, r, now, "Closed", "Expired");
                return true;
            }
            let roll: f64 = rng.random();
            if roll < 0.004 {
                transition(rng, r, now, "Active", "Accepted");
                true
            } else if roll < 0.005 {
                transition(rng, r, now, "Closed", "Declined");
                true
            } else {
                false
            }
        }
        "Active" => {
            let roll: f64 = rng.random();
            if roll < 0.004 {
                transition(rng, r, now, "Closed", "Won");
                true
            } else if roll < 0.007 {
                transition(rng, r, now, "Closed", "Lost");
                true
            } else if roll < 0.010 {
                let details = r.get_mut("details").and_then(Value::as_object_mut);
                if let Some(d) = details {
                    let v = d.get("dealValue").and_then(Value::as_i64).unwrap_or(0);
                    d.insert("dealValue".into(), json!(v + 5000));
                }
                touch(rng, r, now);
                true
            } else {
                false
            }
        }
        _ => false,
    }
}

/// Applies a JSON merge patch (RFC 7396).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

/// The Referrals API (`GET /v1.0/engagements/referrals`) and its `/_sim/referrals` controls.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/v1.0/engagements/referrals", get(list_referrals))
        .route(
            "/v1.0/engagements/partners/dealregistrationeligibility",
            get(partner_eligibility),
        )
        .route("/_sim/referrals", post(add_referrals))
        .route(
            "/_sim/referrals/{id}",
            delete(remove_referral).patch(patch_referral),
        )
}

/// The referrals APIs' sign-in rules: "This API currently supports only user access where
/// partners must be in one of the following roles: Global Admin, Referral Admin or Referral
/// User."
pub(super) const REFERRALS_API: Audience = Audience {
    audience: "https://api.partner.microsoft.com",
    users_only: true,
};

/// `GET /v1.0/engagements/partners/dealregistrationeligibility`, as the documented example.
async fn partner_eligibility(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    if let Err(refused) = bearer(&s, &headers, &REFERRALS_API) {
        s.stats.unauthorized += 1;
        let code = refused.status.canonical_reason().unwrap_or("Unauthorized");
        return odata_error(refused.status, code, refused.message);
    }
    if let Some(fault) = s.take_fault(1) {
        drop(s);
        return fault_response(fault, "{\"isEligible\": tr", |status| {
            odata_error(status, "Error", "Injected fault")
        });
    }
    let eligible = s.partner_eligible;
    Json(json!({ "isEligible": eligible, "policies": [ { "isEligible": eligible } ] }))
        .into_response()
}

pub(super) fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

async fn list_referrals(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let echo = format!(
        "GET /v1.0/engagements/referrals?{} with Authorization: {}",
        query.as_deref().unwrap_or(""),
        headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("")
    );
    let request_id = format!("{:016x}", rand::random::<u64>());
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let (answer, delay) = {
        let mut s = state.lock().expect("simulator state lock");
        s.stats.list_requests += 1;
        if let Err(refused) = bearer(&s, &headers, &REFERRALS_API) {
            s.stats.unauthorized += 1;
            (Answer::Refused(refused), None)
        } else {
            match list_page(&mut s, query.as_deref().unwrap_or(""), &host) {
                Err(msg) => (
                    Answer::Error(StatusCode::BAD_REQUEST, "BadRequest".into(), msg),
                    None,
                ),
                Ok((page_no, body)) => match s.take_fault(page_no) {
                    Some(FaultAction::Delay { ms }) => {
                        s.stats.pages_served += 1;
                        (Answer::Page(body), Some(Duration::from_millis(ms)))
                    }
                    Some(FaultAction::EmptyPage) => {
                        s.stats.pages_served += 1;
                        let mut body = body;
                        body["value"] = serde_json::json!([]);
                        (Answer::Page(body), None)
                    }
                    // A failed page does not consume the cursor: the client can retry the link.
                    Some(fault) => (Answer::Fault(fault), None),
                    None => {
                        s.stats.pages_served += 1;
                        (Answer::Page(body), None)
                    }
                },
            }
        }
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let mut response = match answer {
        Answer::Page(body) => Json(body).into_response(),
        Answer::Refused(refused) => {
            let code = refused.status.canonical_reason().unwrap_or("Unauthorized");
            let mut r = odata_error(refused.status, code, refused.message);
            if refused.status == StatusCode::UNAUTHORIZED {
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
            }
            r
        }
        Answer::Error(status, code, msg) => odata_error(status, &code, &msg),
        Answer::Fault(FaultAction::Echo { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({ "errorStatus": status.as_u16(), "message": format!("cannot serve {echo}") });
            (status, Json(body)).into_response()
        }
        Answer::Fault(fault) => fault_response(
            fault,
            "{\"@odata.count\": 3, \"value\": [ {\"id\": \"broken\", \"status\": \"New\"",
            |status| {
                let body = json!({ "errorStatus": status.canonical_reason().unwrap_or("Error"), "message": "Injected fault", "dependencyErrorCode": null });
                (status, Json(body)).into_response()
            },
        ),
    };
    response
        .headers_mut()
        .insert("request-id", request_id.parse().expect("header"));
    response
}

/// Builds the page a query asks for: (page number, body).
fn list_page(s: &mut SimState, query: &str, host: &str) -> Result<(u32, Value), String> {
    let query = Query::parse(Some(query));
    let param = |name: &str| query.get(name).map(str::to_string);
    let cursor = match param("$skiptoken") {
        Some(token) => s
            .cursors
            .get(&token)
            .cloned()
            .ok_or_else(|| format!("unknown or expired $skiptoken {token:?}"))?,
        None => {
            let filter = param("$filter")
                .map(|f| Filter::parse(&f))
                .transpose()
                .map_err(|e| format!("$filter: {e}"))?;
            if s.readings.updated_filter == super::UpdatedFilter::Refused
                && filter
                    .as_ref()
                    .is_some_and(|f| f.mentions("updatedDateTime"))
            {
                return Err("$filter: updatedDateTime is not a filterable property".into());
            }
            let order = match param("$orderby") {
                Some(o) => OrderBy::parse(&o)?,
                None => OrderBy {
                    field: "createdDateTime".into(),
                    descending: false,
                },
            };
            let top = match param("$top") {
                Some(t) => t
                    .parse::<usize>()
                    .map_err(|_| format!("$top must be a number, not {t:?}"))?,
                None => s.page_size,
            };
            Cursor {
                filter,
                order,
                top: top.clamp(1, s.page_size),
                offset: 0,
                page: 1,
            }
        }
    };
    let field = cursor.order.field.as_str();
    let text = |r: &'_ Value, key: &str| -> Option<String> {
        r.get(key).and_then(Value::as_str).map(str::to_string)
    };
    // Every page is cut from the list as it is now (a referral that arrives or changes
    // between pages shifts the rest), each one's sort key read once.
    let mut keyed: Vec<(String, Option<String>, &Value)> = s
        .referrals
        .iter()
        .filter(|r| cursor.filter.as_ref().is_none_or(|f| f.matches(r)))
        .map(|r| (text(r, field).unwrap_or_default(), text(r, "id"), r))
        .collect();
    keyed.sort_by(|a, b| {
        let ord = a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1));
        if cursor.order.descending {
            ord.reverse()
        } else {
            ord
        }
    });
    let matching: Vec<&Value> = keyed.into_iter().map(|(_, _, r)| r).collect();
    let total = matching.len();
    let end = (cursor.offset + cursor.top).min(total);
    let items: Vec<Value> = matching[cursor.offset.min(total)..end]
        .iter()
        .map(|r| (*r).clone())
        .collect();
    let count = match s.readings.odata_count {
        super::ODataCount::Total => total,
        super::ODataCount::PerPage => items.len(),
    };
    let mut body = json!({
        "@odata.context": format!("http://{host}/v1.0/$metadata#Referrals"),
        "@odata.count": count,
        "value": items,
    });
    if end < total {
        let token = format!("{:022x}", rand::random::<u128>());
        if s.cursors.len() > 10_000 {
            s.cursors.clear();
        }
        s.cursors.insert(
            token.clone(),
            Cursor {
                offset: end,
                page: cursor.page + 1,
                ..cursor.clone()
            },
        );
        // As in the documentation's sample: plain http and a path without /engagements.
        body["@odata.nextLink"] = json!(format!("http://{host}/v1.0/referrals?$skiptoken={token}"));
    }
    Ok((cursor.page, body))
}

#[derive(Deserialize)]
struct AddRequest {
    #[serde(default = "one")]
    count: usize,
}

fn one() -> usize {
    1
}

async fn add_referrals(State(state): State<Shared>, Json(req): Json<AddRequest>) -> Response {
    let ids = state
        .lock()
        .expect("simulator state lock")
        .add_referrals(req.count);
    Json(json!({ "ids": ids })).into_response()
}

async fn patch_referral(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Json(patch): Json<Value>,
) -> Response {
    if state
        .lock()
        .expect("simulator state lock")
        .patch_referral(&id, &patch)
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        odata_error(StatusCode::NOT_FOUND, "NotFound", "no such referral")
    }
}

async fn remove_referral(State(state): State<Shared>, Path(id): Path<String>) -> Response {
    if state
        .lock()
        .expect("simulator state lock")
        .remove_referral(&id)
    {
        StatusCode::NO_CONTENT.into_response()
    } else {
        odata_error(StatusCode::NOT_FOUND, "NotFound", "no such referral")
    }
}
