//! The weekly digest (DESIGN §1, second line): on its cron schedule, the week's events and the
//! current state of the store become one message per channel — an email with charts inline,
//! a Teams card, or text.
//!
//! - [`crate::cron`]: cron slots in the configured time zone, and the one-day catch-up window;
//! - [`content`]: what it says, from the store and the event log;
//! - [`chart`]: the pictures (PNG);
//! - here: the template data, the message for each channel format, and the slot bookkeeping
//!   (a slot's marker is written in the same transaction as its deliveries: sent once).

pub mod chart;
pub mod content;
mod render;
mod sample;
mod slots;

pub use render::ImageRefs;
pub use slots::{enqueue_due, find, slot_key, Enqueued};

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::json;

use crate::config::{ChannelConfig, DigestConfig};
use crate::model::Delivery;
use crate::store::Store;
use crate::templates::Templates;

use content::{Content, Inputs, Period};

#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("no digest named {0:?} in the configuration (digests: {1})")]
    Unknown(String, String),
    #[error("digest {name:?}: {error}")]
    Render { name: String, error: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// One chart, ready to embed.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `pipeline` or `adoption`.
    pub key: &'static str,
    pub content_id: String,
    pub alt: String,
    pub png: chart::Png,
}

/// A digest computed for one period: its content and pictures, before any channel's format.
#[derive(Debug, Clone)]
pub struct Composed {
    pub name: String,
    pub template: String,
    pub title: String,
    pub period: Period,
    pub content: Content,
    pub charts: Vec<Chart>,
    generated: String,
    period_text: String,
}

/// What a digest is made from, handed in by whoever drives it (the pipeline builds it from
/// the configuration): the digest imports no orchestrator.
#[derive(Debug, Clone, Copy)]
pub struct DigestInputs<'a> {
    pub store: &'a Store,
    pub templates: &'a Templates,
    pub channels: &'a BTreeMap<String, ChannelConfig>,
    pub digests: &'a [DigestConfig],
    pub tz: &'a jiff::tz::TimeZone,
    /// The adoption health classes from best to worst.
    pub ranking: &'a [String],
    /// The refresh token file, if delegated sign-in is configured.
    pub refresh_file: Option<&'a std::path::Path>,
}

/// Computes `digest` for the week that ends at `end`.
pub fn compose(
    inputs: &DigestInputs<'_>,
    digest: &DigestConfig,
    end: Timestamp,
) -> Result<Composed, DigestError> {
    let period = Period::week_to(end);
    let content = content::compute(
        inputs.store,
        &Inputs {
            period,
            ranking: inputs.ranking,
            refresh_file: inputs.refresh_file,
        },
    )?;
    let fail = |error: String| DigestError::Render {
        name: digest.name.clone(),
        error,
    };
    let mut charts = Vec::new();
    if content.pipeline.iter().any(|w| w.new > 0) {
        charts.push(Chart {
            key: "pipeline",
            content_id: format!("pipeline.{}@partnerwatch", end.as_second()),
            alt: format!(
                "New referrals per week: {}",
                content
                    .pipeline
                    .iter()
                    .map(|w| format!("{} {}", w.label, w.new))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            png: chart::pipeline(&content.pipeline).map_err(fail)?,
        });
    }
    if let Some(c) = &content.copilot {
        charts.push(Chart {
            key: "adoption",
            content_id: format!("adoption.{}@partnerwatch", end.as_second()),
            alt: format!(
                "Copilot adoption health: {}",
                c.distribution
                    .iter()
                    .map(|h| format!("{} {}", h.status, h.now))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            png: chart::adoption(&c.distribution, c.has_week_ago).map_err(fail)?,
        });
    }
    let tz = inputs.tz;
    let day = |t: Timestamp| t.to_zoned(tz.clone()).strftime("%a %-d %b %Y").to_string();
    let last_day = end - jiff::SignedDuration::from_secs(1);
    Ok(Composed {
        name: digest.name.clone(),
        template: digest.template.clone(),
        title: format!(
            "Partner digest: week of {}",
            period.start.to_zoned(tz.clone()).strftime("%-d %b %Y")
        ),
        period_text: format!("{} – {}", day(period.start), day(last_day)),
        generated: end
            .to_zoned(tz.clone())
            .strftime("%a %-d %b %Y %H:%M %Z")
            .to_string(),
        period,
        content,
        charts,
    })
}

impl Composed {
    /// One delivery per channel of `digest`, each in its channel's format.
    pub fn deliveries(
        &self,
        templates: &Templates,
        channels: &BTreeMap<String, ChannelConfig>,
        digest: &DigestConfig,
        id: &str,
        now: Timestamp,
    ) -> Result<Vec<Delivery>, DigestError> {
        digest
            .channels
            .iter()
            .filter_map(|name| channels.get(name).map(|c| (name, c)))
            .map(|(name, config)| {
                let (message, images) = self.message(templates, config.format())?;
                Ok(Delivery {
                    images,
                    ..Delivery::pending(
                        id,
                        None,
                        &format!("digest {}", digest.name),
                        name,
                        message,
                        now,
                    )
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Format};
    use crate::notify::teams::card::{card_size, TEAMS_CARD_LIMIT};

    fn shipped() -> Templates {
        Templates::from_sources(
            std::path::Path::new("templates"),
            crate::shipped::templates(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap()
    }

    fn weekly() -> DigestConfig {
        DigestConfig {
            name: "weekly".into(),
            schedule: "0 8 * * MON".into(),
            slots: crate::cron::Schedule::parse("0 8 * * MON", jiff::tz::TimeZone::UTC).unwrap(),
            channels: vec![],
            template: crate::config::DEFAULT_DIGEST_TEMPLATE.into(),
        }
    }

    #[test]
    fn every_format_renders_every_section_with_customer_data_escaped() {
        let t = shipped();
        let d = Composed::sample(&weekly(), &jiff::tz::TimeZone::UTC);
        let (html, images) = d.message(&t, Format::Html).unwrap();
        let Body::Html { html: body, text } = &html.body else {
            panic!("an email body: {:?}", html.body)
        };
        for heading in [
            "Referrals",
            "Copilot adoption",
            "MCI performance",
            "License usage",
            "partnerwatch itself",
        ] {
            assert!(body.contains(heading), "{heading}");
        }
        assert!(body.contains("Contoso &quot;Ltd&quot; &lt;b&gt;&amp;&lt;/b&gt; 🚀"));
        assert!(!body.contains("<script>") && !body.contains("<b>&</b>"));
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "no external images"
        );
        assert_eq!(images.len(), 2);
        for image in &images {
            assert!(body.contains(&format!("src=\"cid:{}\"", image.content_id)));
            assert!(image.data.starts_with(b"\x89PNG"));
            // Drawn at twice the width the email shows it at (sharp on high-density screens).
            let png_width = u32::from_be_bytes(image.data[16..20].try_into().unwrap());
            let tag = &body[body.find(&format!("cid:{}", image.content_id)).unwrap()..];
            let shown: u32 = tag
                .split("width=\"")
                .nth(1)
                .and_then(|w| w.split('"').next())
                .and_then(|w| w.parse().ok())
                .expect("the img has a width");
            assert_eq!(png_width, 2 * shown, "{tag:.200}");
            assert!(
                tag[..200].contains("width:100%"),
                "it shrinks with the screen"
            );
        }
        // Fluid: nothing is wider than a phone; the column is at most 640 px.
        for fixed in [
            "width=\"640\"",
            "\"width:640px",
            ";width:640px",
            "width=\"592\"",
        ] {
            assert!(!body.contains(fixed), "{fixed}");
        }
        assert!(body.contains("max-width:640px"));
        assert!(text.contains("New this week: 3 — 60,000 USD"), "{text}");
        assert!(text.contains("Lost: 1") && text.contains("Budget moved to next year <script>"));
        assert!(text.contains("… and 3 more"), "{text}");
        assert!(
            text.contains("Eligible for deal registration, not registered yet"),
            "{text}"
        );
        assert!(body.contains("Eligible for deal registration, not registered yet"));
        assert!(body.contains("… and 3 more"));

        let (card, images) = d.message(&t, Format::Teams).unwrap();
        assert!(images.is_empty());
        let Body::Teams { card } = card.body else {
            panic!("a card: {:?}", card.body)
        };
        assert!(card_size(&card) < TEAMS_CARD_LIMIT);
        assert_eq!(card["type"], "AdaptiveCard");
        assert!(card.to_string().contains("Expiring in 7 days"));

        let (tg, _) = d.message(&t, Format::Telegram).unwrap();
        let tg = tg.body.raw();
        assert!(tg.len() <= crate::notify::telegram::markup::TELEGRAM_LIMIT);
        assert!(!tg.contains("<b>&</b>"));
    }

    #[test]
    fn an_empty_week_says_so_and_shows_no_empty_section() {
        let t = shipped();
        let mut d = Composed::sample(&weekly(), &jiff::tz::TimeZone::UTC);
        d.content = Content::default();
        d.charts.clear();
        let text = d.text(&t).unwrap();
        assert!(text.contains("A quiet week"), "{text}");
        for heading in [
            "REFERRALS",
            "COPILOT",
            "MCI",
            "LICENSE",
            "PARTNERWATCH ITSELF",
        ] {
            assert!(!text.contains(heading), "{heading} in {text}");
        }
        let (html, images) = d.message(&t, Format::Html).unwrap();
        assert!(images.is_empty() && !html.body.raw().contains("<img"));
    }

    /// The Teams digest reads as it means: facts say what they count, a list cut short says
    /// how many it left out, solution plays are words, nothing a tenant is called is Markdown.
    #[test]
    fn the_teams_digest_labels_its_numbers_and_says_what_it_leaves_out() {
        let t = shipped();
        let mut d = Composed::sample(&weekly(), &jiff::tz::TimeZone::UTC);
        if let Some(r) = d.content.referrals.as_mut() {
            let one = r.expiring[0].clone();
            r.expiring = vec![one; content::TOP];
            r.expiring_count = content::TOP + 2;
            r.won_count = 4;
        }
        let (m, _) = d.message(&t, Format::Teams).unwrap();
        let Body::Teams { card } = m.body else {
            panic!("a card")
        };
        let facts: Vec<(String, String)> = card["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "FactSet")
            .flat_map(|b| b["facts"].as_array().unwrap().clone())
            .map(|f| {
                (
                    f["title"].as_str().unwrap().to_string(),
                    f["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let fact = |title: &str| {
            facts
                .iter()
                .find(|(t, _)| t == title)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no fact {title}: {facts:?}"))
        };
        // "4 60,000 USD" would read as 460,000: the count says what it counts.
        assert_eq!(fact("Won"), "4 referrals · 60,000 USD");
        for (title, value) in &facts {
            let mut words = value.split_whitespace();
            let (first, second) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            assert!(
                !(first.chars().all(|c| c.is_ascii_digit())
                    && second.starts_with(|c: char| c.is_ascii_digit())),
                "{title}: a count beside an amount: {value}"
            );
        }
        assert!(fact("Copilot deployment").contains("engagements passing"));
        let shown = card.to_string();
        assert!(shown.contains("… and 2 more"), "{shown}");
        assert!(!shown.contains("copilotDeploy"));
    }

    #[test]
    fn the_preview_carries_its_pictures_inside() {
        let t = shipped();
        let d = Composed::sample(&weekly(), &jiff::tz::TimeZone::UTC);
        let html = d.preview(&t).unwrap();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);
        assert!(!html.contains("cid:"));
    }
}
