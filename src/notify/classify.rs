//! The one retry classifier of every HTTP channel (Teams, webhook): what an answer means for
//! the outbox. Must never: put the channel's secret URL into the error it returns.

use super::SendOutcome;
use crate::config::Secret;

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
    let retry_after = crate::retry::retry_after(response.headers());
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
