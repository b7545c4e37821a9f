//! The one HTTP layer every source uses: a shared reqwest client (rustls), per-call
//! timeouts, retries with exponential backoff and jitter on 5xx and transport errors,
//! `Retry-After` honoured on 429/503, a `client-request-id` on every call, and the
//! Partner Center error body (`errorStatus`, `message`, `dependencyErrorCode`) surfaced in
//! errors. Must never: put a token or a secret URL into an error or a log line.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, AUTHORIZATION};
use reqwest::StatusCode;
use url::Url;

pub use crate::config::HttpConfig;
use crate::config::Secret;

/// The longest `Retry-After` partnerwatch waits inside one sweep; a longer one fails the
/// sweep, which is tried again on the next schedule.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);

/// Why a call failed, after its retries.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{what}: cannot reach {host}: {error}")]
    Transport {
        what: String,
        host: String,
        error: String,
    },
    #[error("{what}: the server answered {status}{}{}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default(), request_id.as_deref().map(|r| format!(" ({r})")).unwrap_or_default(), retry_after.map(|w| format!("; it asks to wait {} s, and the next sweep waits for it", w.as_secs())).unwrap_or_default())]
    Status {
        what: String,
        status: StatusCode,
        detail: Option<String>,
        /// "request id X" when the server gave one, else "MS-RequestId X" as sent.
        request_id: Option<String>,
        /// A `Retry-After` longer than a sweep waits ([`MAX_RETRY_AFTER`]).
        retry_after: Option<Duration>,
    },
}

impl HttpError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Transport { .. } => None,
        }
    }

    /// How long the server asked to be left alone, when longer than a sweep waits.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HttpError::Status { retry_after, .. } => *retry_after,
            HttpError::Transport { .. } => None,
        }
    }
}

/// A token bucket: at most `per_minute` calls a minute to one host, in bursts of up to a
/// tenth of that. Calls wait for a token; they are never refused.
#[derive(Debug)]
pub struct RateLimit {
    per_minute: u32,
    state: tokio::sync::Mutex<(f64, tokio::time::Instant)>,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> Self {
        let burst = Self::burst_of(per_minute);
        Self {
            per_minute: per_minute.max(1),
            state: tokio::sync::Mutex::new((burst, tokio::time::Instant::now())),
        }
    }

    fn burst_of(per_minute: u32) -> f64 {
        (f64::from(per_minute) / 10.0).max(1.0)
    }

    /// Waits until a call may be made.
    pub async fn acquire(&self) {
        let rate = f64::from(self.per_minute) / 60.0;
        let burst = Self::burst_of(self.per_minute);
        let mut state = self.state.lock().await;
        let now = tokio::time::Instant::now();
        state.0 = (state.0 + now.duration_since(state.1).as_secs_f64() * rate).min(burst);
        state.1 = now;
        if state.0 < 1.0 {
            let wait = Duration::from_secs_f64((1.0 - state.0) / rate);
            tokio::time::sleep(wait).await;
            state.0 = 1.0;
            state.1 = tokio::time::Instant::now();
        }
        state.0 -= 1.0;
    }
}

/// The shared client.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    config: HttpConfig,
    limits: Arc<std::sync::Mutex<HashMap<String, Arc<RateLimit>>>>,
}

impl Http {
    pub fn new(config: HttpConfig) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("partnerwatch/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds with rustls");
        Self {
            client,
            config,
            limits: Arc::default(),
        }
    }

    /// How calls are made (retries, timeouts, the sweep caps).
    pub fn config(&self) -> &HttpConfig {
        &self.config
    }

    /// Limits calls to `host` to `per_minute` (the ABSS API allows 600 a minute).
    pub fn limit_host(&self, host: &str, per_minute: u32) {
        self.limits
            .lock()
            .expect("rate limits")
            .insert(host.to_string(), Arc::new(RateLimit::new(per_minute)));
    }

    fn limit_for(&self, url: &Url) -> Option<Arc<RateLimit>> {
        let host = url.host_str()?;
        self.limits.lock().expect("rate limits").get(host).cloned()
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GETs `url` with a bearer token into `body` (cleared first), retrying what is worth
    /// retrying; a source paging through a large dataset reuses one buffer. `what` names the
    /// call in errors ("referrals page 3").
    pub async fn get_into(
        &self,
        url: &Url,
        token: &Secret,
        what: &str,
        body: &mut Vec<u8>,
    ) -> Result<String, HttpError> {
        let mut attempt = 0;
        // One correlation id for the call and its retries, a request id per attempt
        // (Partner Center REST headers).
        let correlation = new_request_id();
        let host = url.host_str().unwrap_or("the server").to_string();
        loop {
            attempt += 1;
            if let Some(limit) = self.limit_for(url) {
                limit.acquire().await;
            }
            let request_id = new_request_id();
            let result = self
                .client
                .get(url.clone())
                .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
                .header(ACCEPT, "application/json")
                .header("client-request-id", &request_id)
                .header("MS-RequestId", &request_id)
                .header("MS-CorrelationId", &correlation)
                .timeout(self.config.timeout.as_duration())
                .send()
                .await;
            let (error, wait) = match result {
                Err(e) => {
                    let error = HttpError::Transport {
                        what: what.to_string(),
                        host: host.clone(),
                        error: token.redact(&cause(&e.without_url())),
                    };
                    (error, None)
                }
                Ok(response) => {
                    let status = response.status();
                    let label = request_label(response.headers(), &request_id);
                    if status.is_success() {
                        match read_body(response, body).await {
                            Ok(()) => {
                                tracing::debug!(%what, %status, request = %label, bytes = body.len(), "GET ok");
                                return Ok(label);
                            }
                            Err(e) => (
                                HttpError::Transport {
                                    what: what.to_string(),
                                    host: host.clone(),
                                    error: format!(
                                        "the answer broke off: {}",
                                        cause(&e.without_url())
                                    ),
                                },
                                None,
                            ),
                        }
                    } else {
                        let wait = crate::retry::retry_after(response.headers());
                        let body = response.text().await.unwrap_or_default();
                        let error = HttpError::Status {
                            what: what.to_string(),
                            status,
                            detail: error_detail(&body).map(|d| token.redact(&d)),
                            request_id: Some(label),
                            retry_after: None,
                        };
                        let retryable = status == StatusCode::TOO_MANY_REQUESTS
                            || status.is_server_error()
                            || status == StatusCode::REQUEST_TIMEOUT;
                        if !retryable {
                            return Err(error);
                        }
                        (error, wait)
                    }
                }
            };
            if attempt > self.config.retries {
                return Err(error);
            }
            let wait = match wait {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(match error {
                        HttpError::Status {
                            what,
                            status,
                            detail,
                            request_id,
                            ..
                        } => HttpError::Status {
                            what,
                            status,
                            detail,
                            request_id,
                            retry_after: Some(w),
                        },
                        other => other,
                    })
                }
                Some(w) => w,
                None => crate::retry::backoff(self.config.backoff.as_duration(), attempt),
            };
            tracing::warn!(%error, attempt, retry_in_ms = wait.as_millis() as u64, "call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

/// An error and its causes, as one line: reqwest says "error sending request" and keeps the
/// reason (a timeout, DNS, TLS, a refused connection) in its sources.
/// What one write call got back, whatever its status: the caller decides what a 412 or a
/// 403 means.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// "request id X" (the server's) or "MS-RequestId X" (ours), for messages.
    pub request: String,
    /// The error body's message, for messages (secrets redacted).
    pub detail: Option<String>,
}

impl Http {
    /// Sends one request once (a PATCH or a POST): a write is never repeated blindly, so a
    /// timeout or a dropped connection is an error whose outcome is unknown — the caller reads
    /// the resource again to learn whether it took effect. `Err` only when no answer came.
    pub async fn send_once(
        &self,
        method: reqwest::Method,
        url: &Url,
        token: &Secret,
        what: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, HttpError> {
        if let Some(limit) = self.limit_for(url) {
            limit.acquire().await;
        }
        let request_id = new_request_id();
        let host = url.host_str().unwrap_or("the server").to_string();
        let mut request = self
            .client
            .request(method, url.clone())
            .header(AUTHORIZATION, format!("Bearer {}", token.expose()))
            .header(ACCEPT, "application/json")
            .header("client-request-id", &request_id)
            .header("MS-RequestId", &request_id)
            .header("MS-CorrelationId", new_request_id())
            .timeout(self.config.timeout.as_duration());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |e: reqwest::Error| HttpError::Transport {
            what: what.to_string(),
            host: host.clone(),
            error: token.redact(&cause(&e.without_url())),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let etag = header("etag");
        let request_label = request_label(response.headers(), &request_id);
        let mut bytes = Vec::new();
        read_body(response, &mut bytes).await.map_err(transport)?;
        let detail = (!status.is_success())
            .then(|| error_detail(&String::from_utf8_lossy(&bytes)))
            .flatten()
            .map(|d| token.redact(&d));
        tracing::debug!(%what, %status, request = %request_label, "write answered");
        Ok(Answer {
            status,
            body: bytes,
            etag,
            request: request_label,
            detail,
        })
    }
}

/// "request id X" when the server named its request, else "MS-RequestId X" as sent.
fn request_label(headers: &reqwest::header::HeaderMap, sent: &str) -> String {
    let server = ["request-id", "x-ms-request-id", "ms-requestid"]
        .iter()
        .find_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()));
    match server {
        Some(id) => format!("request id {id}"),
        None => format!("MS-RequestId {sent}"),
    }
}

fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let s_text = s.to_string();
        if !out.contains(&s_text) {
            out.push_str(": ");
            out.push_str(&s_text);
        }
        next = s.source();
    }
    out
}

/// Reads a response body into `body`, chunk by chunk.
async fn read_body(mut response: reqwest::Response, body: &mut Vec<u8>) -> reqwest::Result<()> {
    body.clear();
    if let Some(len) = response.content_length() {
        body.reserve(len as usize);
    }
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(())
}

/// A fresh id for the `client-request-id` header.
fn new_request_id() -> String {
    let v: u128 = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        (v >> 96) as u32,
        (v >> 80) as u16,
        (v >> 68) as u16 & 0xfff,
        (v >> 52) as u16,
        v as u64 & 0xffff_ffff_ffff
    )
}

/// The useful part of an error body, in either casing the docs show (the ABSS format
/// block's `ErrorStatus`/`Message`/`DependencyErrorCode`, its camelCase example with an
/// `errors` validation map, OData's `error.code`/`error.message`), or the start of the text.
fn error_detail(body: &str) -> Option<String> {
    let body = body.trim();
    if body.is_empty() {
        return None;
    }
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
        // A key in any casing.
        fn get<'v>(v: &'v serde_json::Value, key: &str) -> Option<&'v serde_json::Value> {
            v.as_object()?
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        }
        let text = |v: &serde_json::Value| match v {
            serde_json::Value::Null => None,
            serde_json::Value::String(s) if s.is_empty() => None,
            serde_json::Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let mut parts = Vec::new();
        for key in ["errorStatus", "code"] {
            if let Some(x) = get(&v, key).and_then(text) {
                parts.push(x);
            }
        }
        if let Some(err) = get(&v, "error") {
            for key in ["code", "message"] {
                if let Some(x) = get(err, key).and_then(text) {
                    parts.push(x);
                }
            }
        }
        if let Some(x) = get(&v, "message").and_then(text) {
            parts.push(x);
        }
        // The validation map: `{"Email": ["…"], …}` → `Email: …`.
        if let Some(errors) = get(&v, "errors").and_then(serde_json::Value::as_object) {
            let fields: Vec<String> = errors
                .iter()
                .map(|(field, msgs)| {
                    let msgs: Vec<String> = match msgs {
                        serde_json::Value::Array(a) => a.iter().filter_map(text).collect(),
                        other => text(other).into_iter().collect(),
                    };
                    format!("{field}: {}", msgs.join("; "))
                })
                .collect();
            if !fields.is_empty() {
                parts.push(fields.join(" | "));
            }
        }
        if let Some(x) = get(&v, "dependencyErrorCode").and_then(text) {
            parts.push(format!("dependencyErrorCode {x}"));
        }
        if !parts.is_empty() {
            return Some(parts.join(": "));
        }
    }
    Some(body.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn rate_limit_spaces_calls_after_the_burst() {
        let limit = RateLimit::new(600);
        let start = tokio::time::Instant::now();
        for _ in 0..70 {
            limit.acquire().await;
        }
        // A burst of 60, then 10 calls at 10 a second.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(990) && elapsed < Duration::from_millis(1100),
            "{elapsed:?}"
        );
    }

    #[test]
    fn error_body_is_summarised() {
        let body =
            r#"{"errorStatus":"TooManyRequests","message":"slow down","dependencyErrorCode":42}"#;
        assert_eq!(
            error_detail(body).unwrap(),
            "TooManyRequests: slow down: dependencyErrorCode 42"
        );
        assert_eq!(
            error_detail("<html>oops</html>").unwrap(),
            "<html>oops</html>"
        );
    }

    #[test]
    fn error_bodies_are_read_in_both_documented_casings_with_their_validation_map() {
        // The ABSS format block: PascalCase, a structured DependencyErrorCode.
        let pascal = r#"{"ErrorStatus": 400, "Message": "Bad page size", "DependencyErrorCode": {"source": "sql", "code": 17}}"#;
        assert_eq!(
            error_detail(pascal).unwrap(),
            r#"400: Bad page size: dependencyErrorCode {"source":"sql","code":17}"#
        );
        // Its example: camelCase with the `errors` map.
        let camel = r#"{"errors": {"Email": ["The Email field is required."], "ContactTypeId": ["Invalid."]}, "errorStatus": 400, "message": "One or more validation errors occurred."}"#;
        assert_eq!(
            error_detail(camel).unwrap(),
            "400: One or more validation errors occurred.: Email: The Email field is required. | ContactTypeId: Invalid."
        );
        let odata = r#"{"Error": {"Code": "Forbidden", "Message": "no role"}}"#;
        assert_eq!(error_detail(odata).unwrap(), "Forbidden: no role");
    }
}
