//! The simulator's HTTP surface: the Referrals list endpoint and the `/_sim/` controls.

use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::{json, Value};

use super::odata::{Filter, OrderBy};
use super::{Cursor, Fault, FaultAction, Shared, SimState};

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .route("/v1.0/engagements/referrals", get(list_referrals))
        .route("/_sim/advance", post(advance))
        .route("/_sim/faults", post(add_fault).delete(clear_faults))
        .route("/_sim/referrals", post(add_referrals))
        .route(
            "/_sim/referrals/{id}",
            delete(remove_referral).patch(patch_referral),
        )
        .route("/_sim/stats", get(stats))
        .route("/abss/{version}/api/{*path}", get(abss))
        .route(
            "/partner/v1/analytics/commercial/usage/license",
            get(license_usage),
        )
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(super::auth::device_code),
        )
        .route("/{tenant}/oauth2/v2.0/token", post(super::auth::token))
        .route("/msi/token", get(super::auth::managed_identity))
        .route("/_sim/auth/revoke", post(super::auth::revoke))
        .route("/_sim/auth/expire", post(super::auth::expire))
        .with_state(state)
}

fn odata_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    (status, Json(body)).into_response()
}

/// What to send once the state lock is released.
enum Answer {
    Page(Value),
    Unauthorized,
    Fault(FaultAction),
    Error(StatusCode, String, String),
}

async fn list_referrals(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let request_id = format!("{:016x}", rand::random::<u64>());
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let (answer, delay) = {
        let mut s = state.lock().expect("simulator state lock");
        s.stats.list_requests += 1;
        let authorized = bearer_accepted(&s, &headers);
        if !authorized {
            s.stats.unauthorized += 1;
            (Answer::Unauthorized, None)
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
        Answer::Unauthorized => {
            let mut r = odata_error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "A valid bearer token is required.",
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().expect("header"));
            r
        }
        Answer::Error(status, code, msg) => odata_error(status, &code, &msg),
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

/// A request's query parameters; names match in any casing, as the services accept them.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn number(&self, name: &str) -> Option<usize> {
        self.get(name).and_then(|v| v.parse().ok())
    }
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
    let mut matching: Vec<&Value> = s
        .referrals
        .iter()
        .filter(|r| cursor.filter.as_ref().is_none_or(|f| f.matches(r)))
        .collect();
    let key = |r: &&Value| {
        r.get(&cursor.order.field)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    matching.sort_by(|a, b| {
        let ord = key(a)
            .cmp(&key(b))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()));
        if cursor.order.descending {
            ord.reverse()
        } else {
            ord
        }
    });
    let total = matching.len();
    let end = (cursor.offset + cursor.top).min(total);
    let items: Vec<Value> = matching[cursor.offset.min(total)..end]
        .iter()
        .map(|r| (*r).clone())
        .collect();
    let mut body = json!({
        "@odata.context": format!("http://{host}/v1.0/$metadata#Referrals"),
        "@odata.count": total,
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
struct AdvanceRequest {
    #[serde(default)]
    hours: Option<i64>,
    #[serde(default)]
    to: Option<Timestamp>,
}

async fn advance(State(state): State<Shared>, Json(req): Json<AdvanceRequest>) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    let to = match (req.to, req.hours) {
        (Some(to), _) => to,
        (None, Some(h)) => s.now + SignedDuration::from_hours(h),
        (None, None) => {
            return odata_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "give \"hours\" or \"to\"",
            )
        }
    };
    let changed = s.advance_to(to);
    Json(json!({ "now": s.now, "changed": changed })).into_response()
}

async fn add_fault(State(state): State<Shared>, Json(fault): Json<Fault>) -> Response {
    state.lock().expect("simulator state lock").add_fault(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(state): State<Shared>) -> Response {
    state.lock().expect("simulator state lock").clear_faults();
    StatusCode::NO_CONTENT.into_response()
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

async fn stats(State(state): State<Shared>) -> Response {
    let s = state.lock().expect("simulator state lock");
    Json(json!({ "now": s.now, "referrals": s.referrals.len(), "stats": s.stats })).into_response()
}

fn abss_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "errorStatus": status.as_u16(), "message": message })),
    )
        .into_response()
}

/// The Partner Insights endpoints (see [`super::abss`]).
async fn abss(
    State(state): State<Shared>,
    Path((version, path)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if version != "v1.3" && version != "v1.5" {
        return abss_error(
            StatusCode::NOT_FOUND,
            &format!("API version {version} is not available (v1.3, v1.5)"),
        );
    }
    let query = Query::parse(query.as_deref());
    let param = |name: &str| query.number(name);
    let (answer, delay) = {
        let mut s = state.lock().expect("simulator state lock");
        s.stats.abss_requests += 1;
        let authorized = bearer_accepted(&s, &headers);
        if !authorized {
            s.stats.unauthorized += 1;
            return abss_error(
                StatusCode::UNAUTHORIZED,
                "The request wasn't authenticated.",
            );
        }
        let page = param("page").unwrap_or(1).max(1);
        let body = match path.trim_end_matches('/') {
            "opportunities/copilot" => {
                let (items, count, has_more) = page_of(&s.tenants, page, param("pageSize"));
                json!({ "rfaId": null, "count": count, "hasMore": has_more, "items": items })
            }
            "opportunities/copilot/summary" => super::abss::copilot_summary(&s.tenants),
            "mci/partnerPerformance" => {
                let (items, count, has_more) = page_of(&s.mci_rows, page, param("pageSize"));
                json!({ "partnerPerformanceDetails": { "count": count, "hasMore": has_more, "items": items,
                        "availablePartnerAreas": ["Modern Work"], "availableEngagementNames": [], "availableMilestones": [], "availableStages": [] } })
            }
            "mci/partnerPerformance/summary" => super::abss::mci_summary(&s.mci_rows),
            "partnerReferrals" => {
                let (items, count, has_more) =
                    page_of(&s.partner_referrals, page, param("pageSize"));
                json!({ "count": count, "hasMore": has_more, "items": items })
            }
            "opportunities/copilot/adoptionSummary" => super::abss::adoption_summary(&s.tenants),
            other => {
                return abss_error(
                    StatusCode::NOT_FOUND,
                    &format!("no endpoint {other} in the simulator"),
                )
            }
        };
        match s.take_fault(page as u32) {
            Some(FaultAction::Delay { ms }) => {
                (Answer::Page(body), Some(Duration::from_millis(ms)))
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
            |status| abss_error(status, "Injected fault"),
        ),
        _ => abss_error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected"),
    }
}

/// Page `page` (from 1) of `rows`: (items, total count, whether more follow).
fn page_of(rows: &[Value], page: usize, size: Option<usize>) -> (&[Value], usize, bool) {
    let size = size.unwrap_or(100).clamp(1, 1000);
    let total = rows.len();
    let start = ((page - 1) * size).min(total);
    let end = (start + size).min(total);
    (&rows[start..end], total, end < total)
}

/// License usage with `top`/`skip` and an `@nextLink` while more rows follow.
async fn license_usage(
    State(state): State<Shared>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let query = Query::parse(query.as_deref());
    let param = |name: &str| query.number(name);
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut s = state.lock().expect("simulator state lock");
    let authorized = bearer_accepted(&s, &headers);
    if !authorized {
        s.stats.unauthorized += 1;
        return abss_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    s.stats.license_requests += 1;
    let top = param("top").unwrap_or(10_000).clamp(1, 10_000);
    let skip = param("skip").unwrap_or(0);
    let page = (skip / top) as u32 + 1;
    if let Some(fault) = s.take_fault(page) {
        return fault_response(fault, "{\"Value\": [ {\"customerTenantId\"", |status| {
            abss_error(status, "Injected fault")
        });
    }
    let total = s.licenses.len();
    let end = (skip + top).min(total);
    let mut body = json!({ "Value": s.licenses[skip.min(total)..end] });
    if end < total {
        body["@nextLink"] = json!(format!(
            "http://{host}/partner/v1/analytics/commercial/usage/license?top={top}&skip={end}"
        ));
    }
    Json(body).into_response()
}

/// Whether the request carries a token the simulator accepts: its fixed one, or an unexpired
/// one its token service issued.
fn bearer_accepted(s: &SimState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.token || s.auth.accepts(t, s.now))
}

/// The answer to an injected fault: a broken JSON body, or an error status (with
/// `Retry-After` if the fault has one) in the endpoint's own error format. A delay that reaches
/// here (an endpoint that does not wait) is answered 504.
fn fault_response(
    fault: FaultAction,
    malformed: &'static str,
    error: impl Fn(StatusCode) -> Response,
) -> Response {
    match fault {
        FaultAction::Malformed => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            malformed,
        )
            .into_response(),
        FaultAction::Status {
            status,
            retry_after,
        } => {
            let mut r =
                error(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
            if let Some(secs) = retry_after {
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    secs.to_string().parse().expect("header"),
                );
            }
            r
        }
        FaultAction::Delay { .. } => error(StatusCode::GATEWAY_TIMEOUT),
    }
}
