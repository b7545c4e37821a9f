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
    Unauthorized,
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
pub(super) fn bearer_accepted(s: &SimState, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .is_some_and(|t| t == s.token || s.auth.accepts(t, s.now))
}

/// An error in the body form Partner Center's own APIs use (`errorStatus`, `message`).
pub(super) fn partner_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({ "errorStatus": status.as_u16(), "message": message })),
    )
        .into_response()
}
