//! The simulator's own controls: move its clock (`POST /_sim/advance`) and read its counters
//! (`GET /_sim/stats`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::referrals::odata_error;
use super::Shared;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/_sim/advance", post(advance))
        .route("/_sim/stats", get(stats))
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

async fn stats(State(state): State<Shared>) -> Response {
    let s = state.lock().expect("simulator state lock");
    Json(json!({ "now": s.now, "referrals": s.referrals.len(), "stats": s.stats })).into_response()
}
