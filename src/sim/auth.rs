//! The simulator's Entra ID v2.0 token service: device codes, refresh tokens (rotated: each
//! one works once), client credentials, and access tokens that expire on the simulator's
//! clock. `/_sim/auth/revoke` makes every refresh token invalid (as 90 days idle would),
//! `/_sim/auth/expire` every access token (so the API answers 401). `/msi/token` is a managed
//! identity endpoint speaking the App Service protocol (`IDENTITY_ENDPOINT`/`IDENTITY_HEADER`).

use std::collections::{HashMap, HashSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;

use super::Shared;

/// The client secret the simulator accepts for client credentials.
pub const CLIENT_SECRET: &str = "sim-client-secret";
/// The federated token (client assertion) the simulator accepts, as workload identity gives it.
pub const FEDERATED_TOKEN: &str = "sim-federated-token";
/// The secret header value the simulator's managed identity endpoint expects, as App Service
/// hands it to the process in `IDENTITY_HEADER`.
pub const IDENTITY_HEADER: &str = "sim-identity-header";
/// The client id of the one user-assigned identity assigned to the simulated host.
pub const USER_ASSIGNED_CLIENT_ID: &str = "99999999-8888-7777-6666-555555555555";

/// What an issued access token is good for.
#[derive(Debug, Clone)]
pub struct Grant {
    pub expires: Timestamp,
    /// The API it was issued for (the scope's resource).
    pub audience: String,
    /// A person's delegated (App+User) access, or the application's own (app-only).
    pub delegated: bool,
}

/// The resource of an OAuth scope: `https://api.partner.microsoft.com/.default offline_access`
/// → `https://api.partner.microsoft.com`.
fn audience_of(scope: &str) -> String {
    scope
        .split_whitespace()
        .find(|s| s.ends_with("/.default"))
        .map(|s| s.trim_end_matches("/.default").to_string())
        .unwrap_or_default()
}

#[derive(Debug, Default)]
pub struct AuthSim {
    counter: u64,
    /// Refresh tokens not yet used (each works once; any audience may be asked for with it).
    refresh_tokens: HashSet<String>,
    access_tokens: HashMap<String, Grant>,
    /// Device code → (polls still answered `authorization_pending`, the audience asked for).
    device_codes: HashMap<String, (u32, String)>,
    /// Token endpoint calls, by grant type.
    pub grants: HashMap<String, u64>,
    pub token_ttl: i64,
}

impl AuthSim {
    pub fn new() -> Self {
        Self {
            token_ttl: 3600,
            ..Default::default()
        }
    }

    /// What `token` is good for, if this simulator issued it and it has not expired.
    pub fn grant(&self, token: &str, now: Timestamp) -> Option<&Grant> {
        self.access_tokens.get(token).filter(|g| g.expires > now)
    }

    /// A new access token for `audience`; a delegated one comes with a refresh token.
    fn issue(&mut self, now: Timestamp, audience: &str, delegated: bool) -> serde_json::Value {
        let with_refresh = delegated;
        self.counter += 1;
        let access = format!("sim-at-{}", self.counter);
        self.access_tokens.insert(
            access.clone(),
            Grant {
                expires: now + SignedDuration::from_secs(self.token_ttl),
                audience: audience.to_string(),
                delegated,
            },
        );
        let mut answer =
            json!({ "token_type": "Bearer", "expires_in": self.token_ttl, "access_token": access });
        if with_refresh {
            let refresh = format!("sim-rt-{}", self.counter);
            self.refresh_tokens.insert(refresh.clone());
            answer["refresh_token"] = json!(refresh);
        }
        answer
    }

    pub fn revoke_refresh_tokens(&mut self) {
        self.refresh_tokens.clear();
    }

    pub fn expire_access_tokens(&mut self) {
        self.access_tokens.clear();
    }
}

/// Entra's device-code and token endpoints, the App Service managed identity endpoint, and
/// the `/_sim/auth` controls.
pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/devicecode", post(device_code))
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route("/msi/token", get(managed_identity))
        .route("/_sim/auth/revoke", post(revoke))
        .route("/_sim/auth/expire", post(expire))
}

fn oauth_error(error: &str, code: i64, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({ "error": error, "error_description": format!("AADSTS{code}: {description}"), "error_codes": [code] })),
    )
        .into_response()
}

pub(super) async fn device_code(
    State(state): State<Shared>,
    Path(_tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if form.get("client_id").is_none_or(|c| c.is_empty()) {
        return oauth_error(
            "invalid_request",
            900144,
            "The request body must contain the parameter 'client_id'.",
        );
    }
    let mut s = state.lock().expect("simulator state lock");
    s.auth.counter += 1;
    let code = format!("sim-device-{}", s.auth.counter);
    let audience = audience_of(form.get("scope").map_or("", String::as_str));
    s.auth.device_codes.insert(code.clone(), (1, audience));
    Json(json!({
        "device_code": code,
        "user_code": "SIMCODE1",
        "verification_uri": "https://microsoft.com/devicelogin",
        "expires_in": 900,
        "interval": 1,
        "message": "To sign in, use a web browser to open the page https://microsoft.com/devicelogin and enter the code SIMCODE1 to authenticate."
    }))
    .into_response()
}

pub(super) async fn token(
    State(state): State<Shared>,
    Path(_tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    let now = s.now;
    let grant = form.get("grant_type").cloned().unwrap_or_default();
    *s.auth.grants.entry(grant.clone()).or_default() += 1;
    let audience = audience_of(form.get("scope").map_or("", String::as_str));
    match grant.as_str() {
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = form.get("device_code").cloned().unwrap_or_default();
            match s.auth.device_codes.get_mut(&code) {
                None => oauth_error(
                    "expired_token",
                    70020,
                    "The provided authorization code or refresh token has expired.",
                ),
                Some((pending, _)) if *pending > 0 => {
                    *pending -= 1;
                    oauth_error(
                        "authorization_pending",
                        70016,
                        "OAuth 2.0 device flow error. Authorization is pending.",
                    )
                }
                Some(_) => {
                    let (_, audience) = s.auth.device_codes.remove(&code).expect("present");
                    Json(s.auth.issue(now, &audience, true)).into_response()
                }
            }
        }
        "refresh_token" => {
            let rt = form.get("refresh_token").cloned().unwrap_or_default();
            if s.auth.refresh_tokens.remove(&rt) {
                Json(s.auth.issue(now, &audience, true)).into_response()
            } else {
                oauth_error("invalid_grant", 700082, "The refresh token has expired due to inactivity. The token was issued on 2026-08-01 and was inactive for 90.00:00:00.")
            }
        }
        "client_credentials" => {
            let assertion_ok = form.get("client_assertion_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
                && form.get("client_assertion").map(String::as_str) == Some(FEDERATED_TOKEN);
            if form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET) || assertion_ok
            {
                // Client credentials give app-only access, never with a refresh token.
                Json(s.auth.issue(now, &audience, false)).into_response()
            } else {
                oauth_error("invalid_client", 7000215, "Invalid client secret provided.")
            }
        }
        other => oauth_error(
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

pub(super) async fn revoke(State(state): State<Shared>) -> StatusCode {
    state
        .lock()
        .expect("simulator state lock")
        .auth
        .revoke_refresh_tokens();
    StatusCode::NO_CONTENT
}

pub(super) async fn expire(State(state): State<Shared>) -> StatusCode {
    state
        .lock()
        .expect("simulator state lock")
        .auth
        .expire_access_tokens();
    StatusCode::NO_CONTENT
}

/// The App Service managed identity protocol: `GET ?api-version=2019-08-01&resource=…[&client_id=…]`
/// with the `X-IDENTITY-HEADER` secret; `expires_on` is Unix seconds as a string.
pub(super) async fn managed_identity(
    State(state): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::extract::Query(query): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let mut s = state.lock().expect("simulator state lock");
    *s.auth.grants.entry("managed_identity".into()).or_default() += 1;
    if headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        != Some(IDENTITY_HEADER)
    {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "statusCode": 401, "message": "Unauthorized request" })),
        )
            .into_response();
    }
    let resource = query.get("resource").cloned().unwrap_or_default();
    // The audiences of the three APIs, as api-docs/ spell them (not the product's constants).
    let known = [
        "https://api.partner.microsoft.com",
        "https://api.partnercenter.microsoft.com",
        "https://m365partner.microsoft.com",
    ];
    if query.get("api-version").map(String::as_str) != Some("2019-08-01")
        || !known.contains(&resource.as_str())
        || query
            .get("client_id")
            .is_some_and(|c| c != USER_ASSIGNED_CLIENT_ID)
    {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({ "statusCode": 400, "message": "No managed identity found for the specified client id or resource" })),
        )
            .into_response();
    }
    let now = s.now;
    let mut answer = s.auth.issue(now, &resource, false);
    // The caller's cache compares `expires_on` with the wall clock, not the simulator's.
    let expires_on = Timestamp::now().as_second() + s.auth.token_ttl;
    answer["expires_on"] = json!(expires_on.to_string());
    answer["resource"] = json!(resource);
    Json(answer).into_response()
}
