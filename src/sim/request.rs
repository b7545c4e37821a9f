//! What every simulated API shares about a request: its query parameters, whether its bearer
//! token is accepted, and what to answer once the state lock is released.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use serde_json::Value;

use super::{FaultAction, SimState};

/// What to send once the state lock is released.
pub(super) enum Answer {
    Page(Value),
    Refused(Refused),
    Fault(FaultAction),
    Error(StatusCode, String, String),
}

/// A request's query parameters; names match in any casing, as the services accept them.
pub(super) struct Query(Vec<(String, String)>);

impl Query {
    pub(super) fn parse(raw: Option<&str>) -> Query {
        Query(
            url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(super) fn number(&self, name: &str) -> Option<usize> {
        self.get(name).and_then(|v| v.parse().ok())
    }
}

/// Whether the request carries a token the simulator accepts: its fixed one, or an unexpired
/// one its token service issued.
/// An API's sign-in rules: the audience its tokens must be issued for, and whether it takes
/// app-only tokens. Spelled in each simulated API from api-docs/, never from the product.
pub(super) struct Audience {
    pub(super) audience: &'static str,
    /// "This API currently supports only user access" (Referrals); "supports authentication
    /// with App+User credentials" (license usage, read strictly).
    pub(super) users_only: bool,
}

/// Why a request's token is refused: the status (401 or 403) and the message.
pub(super) struct Refused {
    pub(super) status: StatusCode,
    pub(super) message: &'static str,
}

/// Checks the request's bearer token against `api`: the simulator's fixed token (a person's
/// token obtained elsewhere, good for every API), or an unexpired one its token service
/// issued for this API's audience — and, on a users-only API, for a person.
pub(super) fn bearer(s: &SimState, headers: &HeaderMap, api: &Audience) -> Result<(), Refused> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if !token.is_empty() && token == s.token {
        return Ok(());
    }
    let Some(grant) = s.auth.grant(token, s.now) else {
        return Err(Refused {
            status: StatusCode::UNAUTHORIZED,
            message: "The request wasn't authenticated: a valid bearer token is required.",
        });
    };
    if grant.audience.trim_end_matches('/') != api.audience {
        return Err(Refused {
            status: StatusCode::UNAUTHORIZED,
            message: "The token's audience is not valid for this API.",
        });
    }
    if api.users_only && !grant.delegated {
        return Err(Refused {
            status: StatusCode::FORBIDDEN,
            message: "This API supports only user access (App+User); an application token is not accepted.",
        });
    }
    Ok(())
}

/// An error in the body form Partner Center's own APIs use (`errorStatus`, `message`).
pub(super) fn partner_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "errorStatus": status.as_u16(), "message": message })),
    )
        .into_response()
}
