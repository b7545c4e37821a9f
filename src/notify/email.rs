//! The `email` channel: lettre over SMTP (`smtp_url` in lettre's form:
//! `smtp://user:pass@host:587?tls=required`, `smtps://…`), a multipart/alternative message with
//! the plain text and the HTML. The URL holds the password: it is redacted from every error.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::SendOutcome;
use crate::config::{ConfigError, Secret};
use crate::model::Delivery;

#[derive(Debug)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    url: Secret,
}

impl Email {
    pub fn new(
        name: &str,
        smtp_url: Secret,
        from: &str,
        to: &[String],
    ) -> Result<Self, ConfigError> {
        let invalid = |what: String| ConfigError::Invalid(format!("channel {name:?}: {what}"));
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(smtp_url.expose())
            .map_err(|e| {
                invalid(format!(
                    "smtp_url is not usable: {}",
                    smtp_url.redact(&e.to_string())
                ))
            })?
            .timeout(Some(Duration::from_secs(30)))
            .build();
        let from: Mailbox = from
            .parse()
            .map_err(|e| invalid(format!("from {from:?} is not an address ({e})")))?;
        if to.is_empty() {
            return Err(invalid("`to` lists no address".into()));
        }
        let to = to
            .iter()
            .map(|a| {
                a.parse::<Mailbox>()
                    .map_err(|e| invalid(format!("to {a:?} is not an address ({e})")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            transport,
            from,
            to,
            url: smtp_url,
        })
    }

    /// The message as it goes on the wire.
    pub fn message(&self, d: &Delivery) -> Result<lettre::Message, String> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(d.message.title.replace(['\r', '\n'], " "));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let text = d
            .message
            .text
            .clone()
            .unwrap_or_else(|| d.message.body.clone());
        let html = if d.message.text.is_some() {
            d.message.body.clone()
        } else {
            crate::templates::html_from_text(&d.message.title, &d.message.body)
        };
        builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("cannot build the email: {e}"))
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let message = match self.message(d) {
            Ok(m) => m,
            Err(e) => return SendOutcome::Failed(e),
        };
        match self.transport.send(message).await {
            Ok(response) => SendOutcome::Delivered(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) => {
                let error = self.url.redact(&e.to_string());
                if e.is_permanent() {
                    SendOutcome::Failed(error)
                } else {
                    SendOutcome::Retry { after: None, error }
                }
            }
        }
    }
}
