//! `partnerwatch check --online`: one call per configured API, made with the token the
//! sweeps would use, and what to do when it is refused — which role to assign, which
//! permission to grant, or to sign in. Must never: print a token or a record.

use jiff::Timestamp;
use url::Url;

use super::Source;
use crate::auth::TokenProvider;
use crate::http::{Http, HttpError};

/// One call to make.
#[derive(Debug, Clone)]
pub struct Probe {
    /// The API, in words.
    pub api: &'static str,
    pub url: Url,
    pub audience: &'static str,
}

/// What one call gave.
#[derive(Debug, Clone)]
pub struct Probed {
    pub api: &'static str,
    /// The kind of token it was made with ("delegated (App+User)", "app-only (…)").
    pub token: &'static str,
    /// What it answered, or why it failed and what to do.
    pub outcome: Result<String, String>,
}

/// The calls for `sources`, each API once.
pub fn probes(sources: &[Source]) -> Vec<(Probe, TokenProvider, Http)> {
    let mut out: Vec<(Probe, TokenProvider, Http)> = Vec::new();
    for source in sources {
        let (probes, tokens, http) = match source {
            Source::Referrals(s) => s.probes(),
            Source::Abss(s) => s.probes(),
            Source::License(s) => s.probes(),
        };
        for p in probes {
            if !out.iter().any(|(o, ..)| o.url == p.url) {
                out.push((p, tokens.clone(), http.clone()));
            }
        }
    }
    out
}

/// Makes one call.
pub async fn run(probe: &Probe, tokens: &TokenProvider, http: &Http, now: Timestamp) -> Probed {
    let token_kind = tokens.kind(probe.audience);
    let probed = |outcome| Probed {
        api: probe.api,
        token: token_kind,
        outcome,
    };
    let token = match tokens.token(probe.audience, now).await {
        Ok(t) => t,
        Err(e) => return probed(Err(e.to_string())),
    };
    let mut body = Vec::new();
    match http
        .get_into(&probe.url, &token, probe.api, &mut body)
        .await
    {
        Ok(_) => probed(Ok(summary(&body))),
        Err(e) => probed(Err(remedy(probe, tokens, &e))),
    }
}

/// A short account of a 200 answer, without its content.
fn summary(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return format!("answered ({} bytes)", body.len());
    };
    if let Some(eligible) = v.get("isEligible").and_then(serde_json::Value::as_bool) {
        return if eligible {
            "answered: the partner is eligible for deal registration".into()
        } else {
            "answered: the partner is NOT eligible for deal registration".into()
        };
    }
    if v.get("hasPortalAccess").is_some() || v.get("userType").is_some() {
        let who = v["userEmail"]
            .as_str()
            .or(v["userName"].as_str())
            .unwrap_or("an application");
        return format!("answered: signed in as {who}");
    }
    "answered".into()
}

/// What to do about a refused call.
fn remedy(probe: &Probe, tokens: &TokenProvider, e: &HttpError) -> String {
    use reqwest::StatusCode;
    let app_only = tokens.kind(probe.audience).starts_with("app-only");
    let fix = match (e.status(), probe.audience) {
        (Some(StatusCode::UNAUTHORIZED), _) => match tokens {
            TokenProvider::Static(_) => "the API does not accept auth.static_token: replace it, or sign in with auth.tenant_id/client_id and `partnerwatch login`".to_string(),
            _ => "the API does not accept the token: run `partnerwatch login` again (the sign-in expired, or it is for another tenant or app)".to_string(),
        },
        (Some(StatusCode::FORBIDDEN), crate::auth::PARTNER_CENTER) if app_only => {
            "this API takes App+User sign-in only: run `partnerwatch login`".to_string()
        }
        (Some(StatusCode::FORBIDDEN), crate::auth::PARTNER_CENTER) => "the signed-in account lacks a referrals role: assign it Referral Admin or Referral User (or Global Admin) in Partner Center → Account settings → User management".to_string(),
        (Some(StatusCode::FORBIDDEN), crate::auth::PARTNER_INSIGHTS) => "grant the app the M365 Partner Insights permission Api.Access (delegated) or Api.Access.Application (app-only), with admin consent, and give the account access to Partner Insights".to_string(),
        (Some(StatusCode::FORBIDDEN), _) => "the account lacks the rights to read license usage analytics in Partner Center".to_string(),
        (Some(StatusCode::NOT_FOUND), crate::auth::PARTNER_INSIGHTS) => "no data for this partner (404), or a wrong base_url version".to_string(),
        (Some(StatusCode::NOT_FOUND), _) => "check the source's base_url (`partnerwatch simulate` prints the simulator's)".to_string(),
        (Some(status), _) if status.is_server_error() => "the service failed; try again later".to_string(),
        (None, _) => "check base_url and the network (DNS, proxy, TLS)".to_string(),
        (Some(_), _) => "the answer is not one partnerwatch knows a fix for".to_string(),
    };
    format!("{e} — {fix}")
}
