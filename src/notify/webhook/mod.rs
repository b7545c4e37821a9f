//! The `webhook` channel: POSTs `{rule, channel, event, message}` as JSON. The URL is a
//! credential: it never appears in an error or a log line.

use std::time::Duration;

use serde_json::json;

use super::SendOutcome;
use crate::config::{ConfigError, Secret};
use crate::model::{Delivery, Event};

#[derive(Debug)]
pub struct Webhook {
    url: Secret,
    http: reqwest::Client,
}

impl Webhook {
    pub fn new(name: &str, url: Secret, http: reqwest::Client) -> Result<Self, ConfigError> {
        super::check_webhook_url(name, "url", &url)?;
        Ok(Self { url, http })
    }

    pub async fn send(&self, d: &Delivery, event: Option<&Event>) -> SendOutcome {
        let body = json!({
            "rule": d.rule,
            "channel": d.channel,
            "event": event,
            "message": { "title": d.message.title, "body": d.message.body.plain() },
        });
        let response = self
            .http
            .post(self.url.expose())
            .timeout(Duration::from_secs(30))
            .json(&body)
            .send()
            .await;
        super::classify::classify(response, &self.url).await
    }
}
