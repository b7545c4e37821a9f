//! Faults a test injects into the simulated APIs (`POST /_sim/faults`): an error status (with
//! `Retry-After`), a body that is not JSON, or a delay, on one page or every page.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::Shared;

/// What to do to a list request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FaultAction {
    /// Answer with this status (and `Retry-After` seconds, if given).
    Status {
        status: u16,
        #[serde(default)]
        retry_after: Option<u64>,
    },
    /// Answer 200 with a body that is not valid JSON.
    Malformed,
    /// Wait this long before answering normally.
    Delay { ms: u64 },
    /// Answer this status with an error body that quotes the request back: its path and
    /// query and its `Authorization` header (as some servers and proxies do).
    Echo { status: u16 },
    /// Answer a well-formed page with no records that still links to the next one (the page's
    /// records are lost to this answer; the link, the count and the rest are as usual).
    EmptyPage,
}

/// A fault injected into list requests: on page `page` (every page if absent), `times` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    #[serde(default)]
    pub page: Option<u32>,
    #[serde(flatten)]
    pub action: FaultAction,
    #[serde(default = "once")]
    pub times: u32,
}

fn once() -> u32 {
    1
}

/// The routes that inject and clear faults.
pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/_sim/faults", post(add_fault).delete(clear_faults))
}

async fn add_fault(State(state): State<Shared>, Json(fault): Json<Fault>) -> Response {
    state.lock().expect("simulator state lock").add_fault(fault);
    StatusCode::NO_CONTENT.into_response()
}

async fn clear_faults(State(state): State<Shared>) -> Response {
    state.lock().expect("simulator state lock").clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

/// The answer to an injected fault: a broken JSON body, or an error status (with
/// `Retry-After` if the fault has one) in the endpoint's own error format. A delay that reaches
/// here (an endpoint that does not wait) is answered 504.
pub(super) fn fault_response(
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
        // An endpoint that does not empty its pages itself answers with an error instead.
        FaultAction::EmptyPage | FaultAction::Echo { .. } => {
            error(StatusCode::INTERNAL_SERVER_ERROR)
        }
    }
}
