//! The simulator's Partner Center analytics license usage
//! (`GET /partner/v1/analytics/commercial/usage/license`, `top`/`skip`, an `@nextLink` while
//! more rows follow). Usage is reprocessed once a simulated day: every row gets the new
//! `processedDateTime`, and active licenses drift.

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::Rng;
use serde_json::{json, Value};

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use super::faults::fault_response;
use super::request::{bearer, partner_error, Audience, Query};
use super::FaultAction;
use super::Shared;

const WORKLOADS: &[(&str, &str)] = &[
    ("EXO", "Exchange"),
    ("SPO", "SharePoint"),
    ("TEAMS", "Microsoft Teams"),
    ("ODB", "OneDrive"),
];
const PRODUCTS: &[(&str, &str)] = &[
    (
        "6FD2C87F-B296-42F0-B197-1E91E994B900",
        "OFFICE 365 ENTERPRISE E3",
    ),
    ("06EBC4EE-1BB5-47DD-8120-11324BC54E06", "MICROSOFT 365 E5"),
];

/// The rows of one tenant, processed on `day` (`YYYY-MM-DD`).
pub fn rows_for(rng: &mut StdRng, tenant: &Value, day: &str) -> Vec<Value> {
    let (product, product_name) = *PRODUCTS.choose(rng).expect("products");
    WORKLOADS
        .choose_multiple(rng, 2)
        .map(|(code, name)| {
            let qualified = rng.random_range(10..500);
            json!({
                "processedDateTime": format!("{day}T00:00:00"),
                "workloadCode": code,
                "workloadName": name,
                "serviceCode": "o365",
                "serviceName": "Microsoft Office 365",
                "channel": "reseller",
                "customerTenantId": tenant["tenantId"].as_str().unwrap_or_default().to_uppercase(),
                "customerName": tenant["customerName"],
                "productId": product,
                "productName": product_name,
                "licenseActive": rng.random_range(0..qualified),
                "licensesQualified": qualified
            })
        })
        .collect()
}

/// A new day's processing: every row gets `day`, and its active licenses move a little.
pub fn reprocess(rng: &mut StdRng, rows: &mut [Value], day: &str) {
    for r in rows {
        r["processedDateTime"] = json!(format!("{day}T00:00:00"));
        let qualified = r["licensesQualified"].as_i64().unwrap_or(0);
        let active = r["licenseActive"].as_i64().unwrap_or(0) + rng.random_range(-5..=5);
        r["licenseActive"] = json!(active.clamp(0, qualified));
    }
}

/// License usage analytics.
pub(super) fn routes() -> Router<Shared> {
    Router::new().route(
        "/partner/v1/analytics/commercial/usage/license",
        get(license_usage),
    )
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
    // "This scenario supports authentication with App+User credentials": a person's token.
    let api = Audience {
        audience: "https://api.partnercenter.microsoft.com",
        users_only: true,
    };
    if let Err(refused) = bearer(&s, &headers, &api) {
        s.stats.unauthorized += 1;
        return partner_error(refused.status, refused.message);
    }
    s.stats.license_requests += 1;
    let top = param("top")
        .unwrap_or(10_000)
        .clamp(1, s.readings.license_page_cap.unwrap_or(10_000));
    let skip = param("skip").unwrap_or(0);
    let page = (skip / top) as u32 + 1;
    let fault = s.take_fault(page);
    let empty = fault == Some(FaultAction::EmptyPage);
    if let Some(fault) = fault.filter(|_| !empty) {
        return fault_response(fault, "{\"Value\": [ {\"customerTenantId\"", |status| {
            partner_error(status, "Injected fault")
        });
    }
    let total = s.licenses.len();
    let end = (skip + top).min(total);
    let rows = if empty {
        &[][..]
    } else {
        &s.licenses[skip.min(total)..end]
    };
    let mut body = json!({ "Value": rows });
    if end < total {
        let link = format!(
            "http://{host}/partner/v1/analytics/commercial/usage/license?top={top}&skip={end}"
        );
        match s.readings.license_next {
            super::LicenseNext::LinksNextUri => {
                body["links"] = json!({ "next": { "uri": link, "method": "GET" } })
            }
            super::LicenseNext::AtNextLink => body["@nextLink"] = json!(link),
            super::LicenseNext::ODataNextLink => body["@odata.nextLink"] = json!(link),
            super::LicenseNext::None => {}
        }
    }
    Json(body).into_response()
}
