//! The Referrals API's write side (api-docs/referrals-update-and-deal-registration.txt): read
//! one referral, PATCH it, and ask for deal-registration eligibility — with the delegated
//! (App+User) token of `partnerwatch login`, the only kind these APIs take.

use jiff::Timestamp;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::auth::{TokenProvider, PARTNER_CENTER as AUDIENCE};
use crate::config::ReferralsConfig;
use crate::http::Http;

/// Why a call to the Referrals API did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 412: the referral changed since its `eTag` was read.
    #[error(
        "Partner Center says the referral changed since it was read (412 Precondition Failed)"
    )]
    Conflict,
    /// 401/403: who is signed in may not do this.
    #[error("Partner Center refused ({status}{}): {remedy}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied {
        status: StatusCode,
        detail: Option<String>,
        remedy: &'static str,
    },
    /// Another answer that is not a success (400, 404, 5xx).
    #[error("Partner Center answered {status}{} ({request})", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Rejected {
        status: StatusCode,
        detail: Option<String>,
        request: String,
    },
    /// No answer came (a timeout, a dropped connection): whether a write took effect is unknown.
    #[error("no answer from Partner Center: {0}")]
    NoAnswer(String),
    /// No token could be had.
    #[error("cannot sign in: {0}")]
    SignIn(String),
    #[error("Partner Center's answer is not a referral: {0}")]
    Malformed(String),
}

impl ApiError {
    /// The HTTP status Partner Center answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ApiError::Conflict => Some(412),
            ApiError::Denied { status, .. } | ApiError::Rejected { status, .. } => {
                Some(status.as_u16())
            }
            _ => None,
        }
    }
}

/// The calls partnerwatch makes to change referrals.
#[derive(Debug, Clone)]
pub struct ReferralApi {
    endpoint: Url,
    http: Http,
    tokens: TokenProvider,
}

/// What a 401 or 403 asks of the person.
const REMEDY_401: &str = "the sign-in is not accepted: run `partnerwatch login` again";
const REMEDY_403: &str = "the signed-in account may not change referrals: give it the Referral Admin or Referral User role in Partner Center (Account settings › User management), then `partnerwatch login`";

impl ReferralApi {
    pub fn new(
        config: &ReferralsConfig,
        http: Http,
        tokens: TokenProvider,
    ) -> Result<Self, String> {
        let endpoint = crate::sources::endpoint(
            "sources.referrals.base_url",
            &config.base_url,
            "/engagements/referrals",
        )?;
        Ok(Self {
            endpoint,
            http,
            tokens,
        })
    }

    fn url(&self, id: &str, tail: &[&str]) -> Url {
        let mut url = self.endpoint.clone();
        {
            let mut segments = url.path_segments_mut().expect("an http URL");
            segments.push(id);
            segments.extend(tail);
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        url: &Url,
        what: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        now: Timestamp,
    ) -> Result<crate::http::Answer, ApiError> {
        let token = self
            .tokens
            .token(AUDIENCE, now)
            .await
            .map_err(|e| ApiError::SignIn(e.to_string()))?;
        let answer = self
            .http
            .send_once(method, url, &token, what, headers, body)
            .await
            .map_err(|e| ApiError::NoAnswer(e.to_string()))?;
        match answer.status {
            s if s.is_success() => Ok(answer),
            StatusCode::PRECONDITION_FAILED => Err(ApiError::Conflict),
            s @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) => {
                if s == StatusCode::UNAUTHORIZED {
                    self.tokens.invalidate(AUDIENCE);
                }
                Err(ApiError::Denied {
                    status: s,
                    detail: answer.detail,
                    remedy: if s == StatusCode::UNAUTHORIZED {
                        REMEDY_401
                    } else {
                        REMEDY_403
                    },
                })
            }
            s => Err(ApiError::Rejected {
                status: s,
                detail: answer.detail,
                request: answer.request,
            }),
        }
    }

    fn json(body: &[u8]) -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::Malformed(e.to_string()))
    }

    /// `GET …/referrals/{id}`: the referral as Partner Center has it now.
    pub async fn get(&self, id: &str, now: Timestamp) -> Result<Value, ApiError> {
        let answer = self
            .call(
                Method::GET,
                &self.url(id, &[]),
                "read the referral",
                &[],
                None,
                now,
            )
            .await?;
        Self::json(&answer.body)
    }

    /// `PATCH …/referrals/{id}` with `ops`, `If-Match: etag` and `Prefer:
    /// return=representation`: the referral as changed (read again if the answer had no body).
    pub async fn patch(
        &self,
        id: &str,
        ops: &[Value],
        etag: Option<&str>,
        now: Timestamp,
    ) -> Result<Value, ApiError> {
        let mut headers = vec![("Prefer", "return=representation")];
        if let Some(tag) = etag {
            headers.push(("If-Match", tag));
        }
        let body = serde_json::to_vec(ops).expect("patches serialize");
        let answer = self
            .call(
                Method::PATCH,
                &self.url(id, &[]),
                "change the referral",
                &headers,
                Some(body),
                now,
            )
            .await?;
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return self.get(id, now).await;
        }
        Self::json(&answer.body)
    }

    /// `POST …/referrals/{id}/dealregistrations/eligibility` (no body).
    pub async fn eligibility(&self, id: &str, now: Timestamp) -> Result<Value, ApiError> {
        let url = self.url(id, &["dealregistrations", "eligibility"]);
        let answer = self
            .call(
                Method::POST,
                &url,
                "check deal-registration eligibility",
                &[("Prefer", "return=representation")],
                None,
                now,
            )
            .await?;
        Self::json(&answer.body)
    }

    /// `GET …/partners/dealregistrationeligibility`: whether the partner may register deals.
    pub async fn partner_eligible(&self, now: Timestamp) -> Result<bool, ApiError> {
        let answer = self
            .call(
                Method::GET,
                &crate::sources::referrals::partner_eligibility_url(&self.endpoint),
                "check the partner's deal-registration eligibility",
                &[],
                None,
                now,
            )
            .await?;
        Ok(Self::json(&answer.body)?["isEligible"]
            .as_bool()
            .unwrap_or(false))
    }
}
