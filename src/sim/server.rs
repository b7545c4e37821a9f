//! The simulator's HTTP surface: the routes of every simulated API, merged. Each API module
//! owns its handlers and its `routes()`; nothing else lives here.

use axum::Router;

use super::Shared;

pub(super) fn router(state: Shared) -> Router {
    Router::new()
        .merge(super::referrals::routes())
        .merge(super::updates::routes())
        .merge(super::abss::routes())
        .merge(super::license::routes())
        .merge(super::auth::routes())
        .merge(super::faults::routes())
        .merge(super::control::routes())
        .with_state(state)
}
