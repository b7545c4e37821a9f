//! The `teams` channel: a Microsoft Teams Workflows webhook ("Post to a channel when a webhook
//! request is received"). Office 365 connector webhooks are retired; Workflows take an Adaptive
//! Card in a message envelope and answer 202 Accepted. The webhook URL carries its own
//! signature: it is a secret and never appears in an error.

use std::time::Duration;

use serde_json::{json, Value};

use super::SendOutcome;
use crate::config::{ConfigError, Secret};
use crate::model::Delivery;
use card::card_of;

pub mod card;

#[derive(Debug)]
pub struct Teams {
    url: Secret,
    http: reqwest::Client,
}

impl Teams {
    pub fn new(name: &str, url: Secret, http: reqwest::Client) -> Result<Self, ConfigError> {
        super::check_webhook_url(name, "webhook_url", &url)?;
        Ok(Self { url, http })
    }

    /// The request body: the card of the message in the Workflows envelope.
    pub fn payload(d: &Delivery) -> Value {
        let card = card_of(&d.message);
        json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card
            }]
        })
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let response = self
            .http
            .post(self.url.expose())
            .timeout(Duration::from_secs(30))
            .json(&Self::payload(d))
            .send()
            .await;
        super::classify::classify(response, &self.url).await
    }
}
