//! The `webhook` channel: POSTs `{rule, channel, event, message}` as JSON. The URL is a
//! credential: it never appears in an error or a log line.

use std::time::Duration;

use serde_json::json;

use super::SendOutcome;
use crate::config::Secret;
use crate::model::{Delivery, Event};

#[derive(Debug)]
pub struct Webhook {
    url: Secret,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(url: Secret, http: reqwest::Client) -> Self {
        Self { url, http }
    }

    pub async fn send(&self, d: &Delivery, event: Option<&Event>) -> SendOutcome {
        let body = json!({
            "rule": d.rule,
            "channel": d.channel,
            "event": event,
            "message": d.message,
        });
        let response = self
            .http
            .post(self.url.expose())
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await;
        classify(response, &self.url).await
    }
}

/// Turns an HTTP answer into a retry decision: 2xx delivered; 429, 5xx and transport errors
/// retried (after `Retry-After` if given); any other status failed for good.
pub async fn classify(
    response: reqwest::Result<reqwest::Response>,
    secret: &Secret,
) -> SendOutcome {
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            return SendOutcome::Retry {
                after: None,
                error: secret.redact(&e.without_url().to_string()),
            }
        }
    };
    let status = response.status();
    let retry_after = crate::http::retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    let text = secret.redact(text.chars().take(300).collect::<String>().trim());
    if status.is_success() {
        SendOutcome::Delivered(format!("{status}"))
    } else if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
        SendOutcome::Retry {
            after: retry_after,
            error: format!("{status}: {text}"),
        }
    } else {
        SendOutcome::Failed(format!("{status}: {text}"))
    }
}
