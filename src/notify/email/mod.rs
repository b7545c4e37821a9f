//! The `email` channel: lettre over SMTP (`smtp_url` in lettre's form:
//! `smtp://user:pass@host:587?tls=required`, `smtps://…`), a multipart/alternative message with
//! the plain text and the HTML (and, for a digest, the HTML's pictures beside it in a
//! multipart/related part, named by Content-ID). The URL holds the password: it is redacted from every error.
//! With `oauth_user`, the channel signs in with XOAUTH2 and an access token for Exchange Online
//! from the auth module instead of a password.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

pub mod html;

use super::SendOutcome;
use crate::auth::TokenProvider;
use crate::config::{ConfigError, Secret};
use crate::model::{Body, Delivery};

/// The audience of Exchange Online tokens for SMTP.
pub const OUTLOOK: &str = "https://outlook.office365.com";

#[derive(Debug)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    url: Secret,
    /// XOAUTH2: the mailbox to sign in as, and where tokens come from.
    oauth: Option<(String, TokenProvider)>,
}

impl Email {
    pub fn new(
        name: &str,
        smtp_url: Secret,
        from: &str,
        to: &[String],
        oauth: Option<(String, Option<TokenProvider>)>,
    ) -> Result<Self, ConfigError> {
        let invalid = |what: String| ConfigError::Invalid(format!("channel {name:?}: {what}"));
        // `smtp://u:pa#ss@host` parses as host `pa` with `#ss@host` a fragment: mail would go
        // to the wrong server, in the clear. A `#` in the user or password must be URL-encoded.
        if smtp_url.expose().contains('#') {
            return Err(invalid(
                "smtp_url contains `#`, which ends a URL: URL-encode it in the user name or password as %23".into(),
            ));
        }
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
        let oauth = match oauth {
            None => None,
            Some((user, Some(tokens))) => Some((user, tokens)),
            Some((_, None)) => return Err(invalid(
                "oauth_user needs sign-in configured under `auth` (a token for Exchange Online)"
                    .into(),
            )),
        };
        Ok(Self {
            transport,
            from,
            to,
            url: smtp_url,
            oauth,
        })
    }

    /// The message as it goes on the wire.
    pub fn message(&self, d: &Delivery) -> Result<lettre::Message, String> {
        use lettre::message::header::{HeaderName, HeaderValue};
        // The same delivery keeps its Message-ID when it is sent again after a failure, so
        // a mail client can tell a repeat from a new message.
        let domain = self.from.email.domain().to_string();
        let message_id = format!("<partnerwatch.{}.{}@{domain}>", d.id, d.event_id);
        let raw = |name: &'static str, value: &str| {
            HeaderValue::new(HeaderName::new_from_ascii_str(name), value.to_string())
        };
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(d.message.title.replace(['\r', '\n'], " "))
            .date_now()
            .message_id(Some(message_id))
            // A machine's message: no out-of-office or other auto-replies to it (RFC 3834,
            // and Exchange's own header).
            .raw_header(raw("Auto-Submitted", "auto-generated"))
            .raw_header(raw("X-Auto-Response-Suppress", "All"));
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let (text, html) = match &d.message.body {
            Body::Html { html, text } => (text.clone(), html.clone()),
            Body::Legacy {
                body,
                text: Some(text),
            } => (text.clone(), body.clone()),
            other => {
                let text = other.plain().into_owned();
                let html = html::html_from_text(&d.message.title, &text);
                (text, html)
            }
        };
        let body = if d.images.is_empty() {
            MultiPart::alternative_plain_html(text, html)
        } else {
            // Pictures travel inside the message (no external images): the HTML and the
            // PNGs it names by Content-ID form a multipart/related part.
            let mut related = MultiPart::related().singlepart(SinglePart::html(html));
            for image in &d.images {
                let content_type = ContentType::parse(&image.content_type)
                    .map_err(|e| format!("image {}: {e}", image.content_id))?;
                related = related.singlepart(
                    Attachment::new_inline(image.content_id.clone())
                        .body(image.data.clone(), content_type),
                );
            }
            MultiPart::alternative()
                .singlepart(SinglePart::plain(text))
                .multipart(related)
        };
        builder
            .multipart(body)
            .map_err(|e| format!("cannot build the email: {e}"))
    }

    pub async fn send(&self, d: &Delivery) -> SendOutcome {
        let message = match self.message(d) {
            Ok(m) => m,
            Err(e) => return SendOutcome::Failed(e),
        };
        let sent = match &self.oauth {
            None => self.transport.send(message).await,
            Some((user, tokens)) => {
                let token = match tokens.token(OUTLOOK, jiff::Timestamp::now()).await {
                    Ok(t) => t,
                    Err(e) => {
                        return SendOutcome::Retry {
                            after: None,
                            error: format!("no token for SMTP: {e}"),
                        }
                    }
                };
                let transport =
                    match AsyncSmtpTransport::<Tokio1Executor>::from_url(self.url.expose()) {
                        Ok(b) => b
                            .timeout(Some(Duration::from_secs(30)))
                            .credentials(Credentials::new(user.clone(), token.expose().to_string()))
                            .authentication(vec![Mechanism::Xoauth2])
                            .build::<Tokio1Executor>(),
                        Err(e) => return SendOutcome::Failed(self.url.redact(&e.to_string())),
                    };
                transport.send(message).await
            }
        };
        match sent {
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
