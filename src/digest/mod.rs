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

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::config::{ChannelConfig, DigestConfig};
use crate::model::Format;
use crate::model::{Body, Delivery, InlineImage, Message};
use crate::notify::email::html::html_from_text;
use crate::notify::message_from_text;
use crate::notify::teams::card::{adaptive_card, card_size, title_block, TEAMS_CARD_LIMIT};
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

/// Where a chart's `<img src>` points: a Content-ID (email) or the bytes (a preview file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRefs {
    ContentId,
    DataUri,
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
    /// What the templates see: the content's sections, `title`, `period`, `generated`, `name`,
    /// `has_sections`, and `charts.pipeline` / `charts.adoption` (`src`, `alt`).
    pub fn data(&self, refs: ImageRefs) -> Value {
        use base64::Engine;
        let mut data = serde_json::to_value(&self.content).expect("content serializes");
        let c = &self.content;
        let has_sections = c.referrals.is_some()
            || c.copilot.is_some()
            || c.mci.is_some()
            || c.licenses.is_some()
            || c.health.is_some();
        let mut charts = serde_json::Map::new();
        for chart in &self.charts {
            let src = match refs {
                ImageRefs::ContentId => format!("cid:{}", chart.content_id),
                ImageRefs::DataUri => format!(
                    "data:image/png;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&chart.png.bytes)
                ),
            };
            charts.insert(
                chart.key.into(),
                json!({ "src": src, "alt": chart.alt, "width": chart.png.width, "height": chart.png.height }),
            );
        }
        for key in ["pipeline", "adoption"] {
            charts.entry(key).or_insert(Value::Null);
        }
        let obj = data.as_object_mut().expect("content is an object");
        obj.insert("name".into(), json!(self.name));
        obj.insert("title".into(), json!(self.title));
        obj.insert("period".into(), json!(self.period_text));
        obj.insert("generated".into(), json!(self.generated));
        obj.insert("has_sections".into(), json!(has_sections));
        obj.insert("charts".into(), Value::Object(charts));
        data
    }

    fn render(
        &self,
        templates: &Templates,
        format: Format,
        refs: ImageRefs,
    ) -> Result<Option<String>, DigestError> {
        templates
            .render_data(&self.template, format, &self.data(refs))
            .map_err(|error| DigestError::Render {
                name: self.name.clone(),
                error,
            })
    }

    /// The plain-text digest.
    pub fn text(&self, templates: &Templates) -> Result<String, DigestError> {
        self.render(templates, Format::Text, ImageRefs::ContentId)?
            .ok_or_else(|| DigestError::Render {
                name: self.name.clone(),
                error: format!(
                    "no template {}.text.hbs in {}",
                    self.template,
                    templates.origin().display()
                ),
            })
    }

    /// A stand-alone HTML file with the charts inside it, for `digest --preview`.
    pub fn preview(&self, templates: &Templates) -> Result<String, DigestError> {
        match self.render(templates, Format::Html, ImageRefs::DataUri)? {
            Some(html) => Ok(html),
            None => Ok(html_from_text(&self.title, &self.text(templates)?)),
        }
    }

    /// The message for a channel of `format`, with the pictures its HTML refers to.
    pub fn message(
        &self,
        templates: &Templates,
        format: Format,
    ) -> Result<(Message, Vec<InlineImage>), DigestError> {
        let text = self.text(templates)?;
        let rest = text
            .trim_start()
            .split_once('\n')
            .map_or("", |(_, r)| r)
            .trim()
            .to_string();
        // The channel format's own template, if the folder has one (the text is already made).
        let own = match format {
            Format::Text => None,
            _ => self.render(templates, format, ImageRefs::ContentId)?,
        };
        let mut images = Vec::new();
        let body = match (format, own) {
            (Format::Text, _) => Body::Text { text },
            (Format::Html, Some(html)) => {
                images = self
                    .charts
                    .iter()
                    .filter(|c| html.contains(&format!("cid:{}", c.content_id)))
                    .map(|c| InlineImage {
                        content_id: c.content_id.clone(),
                        content_type: "image/png".into(),
                        data: c.png.bytes.clone(),
                    })
                    .collect();
                Body::Html { html, text }
            }
            (Format::Html, None) => match message_from_text(format, &self.title, &rest).body {
                Body::Html { html, .. } => Body::Html { html, text },
                other => other,
            },
            (Format::Telegram, Some(html)) => Body::Telegram { html },
            (Format::Telegram, None) => message_from_text(format, &self.title, &rest).body,
            (Format::Teams, own) => {
                let card = match own {
                    Some(raw) => serde_json::from_str(&raw).map_err(|e| DigestError::Render {
                        name: self.name.clone(),
                        error: format!("{}.teams.hbs is not JSON: {e}", self.template),
                    })?,
                    None => self.card(),
                };
                if card_size(&card) > TEAMS_CARD_LIMIT {
                    message_from_text(format, &self.title, &rest).body
                } else {
                    Body::Teams { card }
                }
            }
        };
        let message = Message {
            title: self.title.clone(),
            body,
        };
        Ok((message, images))
    }

    /// The Teams summary: an Adaptive Card with the headline numbers and the few items that
    /// need someone (expiring referrals, tenants that moved worse).
    pub fn card(&self) -> Value {
        let c = &self.content;
        let mut body = vec![
            title_block(&self.title),
            json!({ "type": "TextBlock", "text": self.period_text, "isSubtle": true, "spacing": "None", "wrap": true }),
        ];
        let heading = |t: &str| json!({ "type": "TextBlock", "text": t, "weight": "Bolder", "spacing": "Medium", "wrap": true });
        let facts = |pairs: Vec<(String, String)>| json!({ "type": "FactSet", "facts": pairs.into_iter().map(|(t, v)| json!({"title": t, "value": v})).collect::<Vec<_>>() });
        let list = |lines: Vec<String>| json!({ "type": "TextBlock", "text": lines.join("\n"), "wrap": true, "spacing": "Small" });
        let money = |m: &[content::Money]| {
            m.iter()
                .map(|m| m.display.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(r) = &c.referrals {
            body.push(heading("Referrals"));
            let mut f = vec![(
                "New".to_string(),
                format!("{} {}", r.new_count, money(&r.new_value))
                    .trim()
                    .to_string(),
            )];
            f.push(("Expiring in 7 days".into(), r.expiring_count.to_string()));
            f.push(("Accepted".into(), r.accepted_count.to_string()));
            f.push((
                "Won".into(),
                format!("{} {}", r.won_count, money(&r.won_value))
                    .trim()
                    .to_string(),
            ));
            f.push((
                "Lost / declined".into(),
                format!("{} / {}", r.lost_count, r.declined_count),
            ));
            body.push(facts(f));
            if !r.expiring.is_empty() {
                body.push(list(
                    r.expiring
                        .iter()
                        .take(content::TOP)
                        .map(|l| format!("- {}: {} — {}", l.note, l.name, l.value))
                        .collect(),
                ));
            }
        }
        if let Some(cp) = &c.copilot {
            body.push(heading("Copilot adoption"));
            body.push(facts(
                cp.distribution
                    .iter()
                    .map(|h| {
                        (
                            h.status.clone(),
                            format!("{} {}", h.now, h.delta).trim().to_string(),
                        )
                    })
                    .collect(),
            ));
            if !cp.worse.is_empty() {
                body.push(list(
                    cp.worse
                        .iter()
                        .map(|m| format!("- worse: {} ({} → {})", m.tenant, m.from, m.to))
                        .collect(),
                ));
            }
        }
        if let Some(m) = &c.mci {
            body.push(heading("MCI performance"));
            body.push(facts(
                m.plays
                    .iter()
                    .map(|p| {
                        (
                            p.play.clone(),
                            format!("{} · {}/{} passing", p.eligibility, p.passing, p.total),
                        )
                    })
                    .collect(),
            ));
        }
        if let Some(l) = &c.licenses {
            body.push(heading("License drops"));
            body.push(list(
                l.drops
                    .iter()
                    .map(|d| format!("- {} · {}: {} → {}", d.customer, d.product, d.from, d.to))
                    .collect(),
            ));
        }
        if let Some(h) = &c.health {
            body.push(heading("partnerwatch itself"));
            body.push(facts(vec![
                ("Sweeps failed".into(), h.sweeps_failed.to_string()),
                ("Dead letters".into(), h.dead_letters.to_string()),
            ]));
        }
        adaptive_card(body)
    }

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

/// The slot key of a scheduled digest: its name and the slot's instant.
pub fn slot_key(name: &str, slot: Timestamp) -> String {
    format!("{name}/{slot}")
}

/// What [`enqueue_due`] did for one digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub name: String,
    pub slot: Timestamp,
    pub deliveries: usize,
}

/// Queues every digest whose slot is due (passed less than a day ago) and not yet taken. The
/// slot marker and the deliveries are stored together, so a crash either before or after the
/// commit sends the digest exactly once.
pub fn enqueue_due(
    inputs: &DigestInputs<'_>,
    now: Timestamp,
) -> Result<Vec<Enqueued>, DigestError> {
    let mut out = Vec::new();
    for digest in inputs.digests {
        let Some(slot) = digest.slots.due(now) else {
            continue;
        };
        let key = slot_key(&digest.name, slot);
        if inputs.store.digest_sent(&key)? {
            continue;
        }
        // The content is as of the slot, even when it is sent late.
        let composed = compose(inputs, digest, slot)?;
        let deliveries = composed.deliveries(
            inputs.templates,
            inputs.channels,
            digest,
            &format!("digest:{key}"),
            now,
        )?;
        if inputs.store.commit_digest(Some(&key), now, &deliveries)? {
            tracing::info!(digest = %digest.name, %slot, deliveries = deliveries.len(), "digest queued");
            out.push(Enqueued {
                name: digest.name.clone(),
                slot,
                deliveries: deliveries.len(),
            });
        }
    }
    Ok(out)
}

/// Finds a configured digest by name.
pub fn find<'a>(digests: &'a [DigestConfig], name: &str) -> Result<&'a DigestConfig, DigestError> {
    digests.iter().find(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = digests.iter().map(|d| d.name.as_str()).collect();
        DigestError::Unknown(
            name.to_string(),
            if names.is_empty() {
                "none configured; add a `digests:` entry".into()
            } else {
                names.join(", ")
            },
        )
    })
}

impl Composed {
    /// A digest with every section filled (names full of quotes, markup and emoji), for
    /// `check` and for tests of the templates.
    pub fn sample(digest: &DigestConfig, tz: &jiff::tz::TimeZone) -> Composed {
        use content::*;
        let end: Timestamp = "2026-11-23T07:00:00Z".parse().expect("valid time");
        let hostile = "Contoso \"Ltd\" <b>&</b> 🚀 *bold*";
        let line = |n: u32, note: &str| ReferralLine {
            id: format!("ref-{n}"),
            name: format!("{hostile} – Copilot rollout {n}"),
            customer: hostile.into(),
            value: format!("{},000 USD", 10 * n),
            amount: f64::from(10_000 * n),
            currency: "USD".into(),
            note: note.into(),
        };
        let money = |amount: f64| Money {
            currency: "USD".into(),
            amount,
            display: crate::templates::helpers::money(&json!(amount), "USD"),
        };
        let health = |status: &str, now: usize, week_ago: usize| HealthCount {
            status: status.into(),
            now,
            week_ago,
            delta: match now as i64 - week_ago as i64 {
                0 => String::new(),
                d if d > 0 => format!("+{d}"),
                d => d.to_string(),
            },
        };
        let distribution = vec![
            health("Healthy", 4, 5),
            health("Starting", 3, 2),
            health("Failure to Launch/Start", 1, 1),
        ];
        let content = Content {
            referrals: Some(Referrals {
                new_count: 3,
                new_value: vec![money(60_000.0)],
                top_new: vec![line(3, ""), line(2, ""), line(1, "")],
                expiring: vec![line(4, "expires in 2 days")],
                accepted: vec![line(5, "")],
                won: vec![line(6, "")],
                won_value: vec![money(60_000.0)],
                lost: vec![line(7, "Budget moved to next year <script>")],
                declined: vec![line(8, "Not our region")],
                waiting: vec![line(4, "waiting 12 days")],
                expiring_count: 1,
                accepted_count: 1,
                won_count: 1,
                lost_count: 1,
                declined_count: 1,
                expiring_more: 0,
                accepted_more: 3,
                won_more: 0,
                lost_more: 0,
                declined_more: 0,
            }),
            copilot: Some(Copilot {
                tenants: 8,
                has_week_ago: true,
                distribution: distribution.clone(),
                worse: vec![Move {
                    tenant: hostile.into(),
                    from: "Healthy".into(),
                    to: "Starting".into(),
                }],
                better: vec![Move {
                    tenant: "Fabrikam".into(),
                    from: "Starting".into(),
                    to: "Healthy".into(),
                }],
                whitespace: vec![Whitespace {
                    tenant: hostile.into(),
                    whitespace: 120.0,
                    seats: "120".into(),
                }],
            }),
            mci: Some(Mci {
                plays: vec![Play {
                    play: "copilotDeploy".into(),
                    eligibility: "Eligible".into(),
                    passing: 3,
                    failing: 1,
                    total: 4,
                    qualified: 3,
                }],
                milestones: vec![Milestone {
                    tenant: hostile.into(),
                    engagement: "Copilot Deployment".into(),
                    from: "POE".into(),
                    to: "Completed".into(),
                }],
            }),
            licenses: Some(Licenses {
                drops: vec![Drop {
                    customer: hostile.into(),
                    product: "Microsoft 365 E5".into(),
                    workload: "Exchange".into(),
                    from: 120,
                    to: 95,
                    delta: -25,
                }],
            }),
            health: Some(Health {
                sweeps_failed: 2,
                failed_by_source: vec!["referrals: 2".into()],
                dead_letters: 1,
                auth_failures: vec!["referrals: AADSTS700082".into()],
                sign_in: None,
            }),
            pipeline: (0..PIPELINE_WEEKS)
                .map(|i| Week {
                    label: format!("W{i}"),
                    new: i * 2,
                })
                .collect(),
        };
        let png = |r: Result<chart::Png, String>| r.expect("the sample charts draw");
        Composed {
            name: digest.name.clone(),
            template: digest.template.clone(),
            title: "Partner digest: week of 16 Nov 2026".into(),
            period: Period::week_to(end),
            charts: vec![
                Chart {
                    key: "pipeline",
                    content_id: "pipeline.sample@partnerwatch".into(),
                    alt: "New referrals per week".into(),
                    png: png(chart::pipeline(&content.pipeline)),
                },
                Chart {
                    key: "adoption",
                    content_id: "adoption.sample@partnerwatch".into(),
                    alt: "Copilot adoption health".into(),
                    png: png(chart::adoption(&distribution, true)),
                },
            ],
            content,
            generated: end
                .to_zoned(tz.clone())
                .strftime("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            period_text: "Mon 16 Nov 2026 – Mon 23 Nov 2026".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
        assert!(text.contains("New this week: 3 — 60,000 USD"), "{text}");
        assert!(text.contains("Lost: 1") && text.contains("Budget moved to next year <script>"));
        assert!(text.contains("… and 3 more"), "{text}");
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

    #[test]
    fn the_preview_carries_its_pictures_inside() {
        let t = shipped();
        let d = Composed::sample(&weekly(), &jiff::tz::TimeZone::UTC);
        let html = d.preview(&t).unwrap();
        assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);
        assert!(!html.contains("cid:"));
    }
}
