//! A composed digest in each channel's form: the data its templates see, the text, the
//! email (HTML with its charts by Content-ID), the Telegram message and the Teams card, and
//! the stand-alone preview file.

use serde_json::{json, Value};

use super::{content, Composed, DigestError};
use crate::model::{Body, Format, InlineImage, Message};
use crate::notify::email::html::html_from_text;
use crate::notify::message_from_text;
use crate::notify::teams::card::{card_size, CardBuilder, TEAMS_CARD_LIMIT};
use crate::templates::Templates;

/// Where a chart's `<img src>` points: a Content-ID (email) or the bytes (a preview file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageRefs {
    ContentId,
    DataUri,
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
                json!({ "src": src, "alt": chart.alt, "width": chart.png.shown_width(), "height": chart.png.shown_height() }),
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
        let mut body = CardBuilder::new(&self.title).subtitle(&self.period_text);
        let money = |m: &[content::Money]| {
            m.iter()
                .map(|m| m.display.clone())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if let Some(r) = &c.referrals {
            body.heading("Referrals");
            // A count and an amount side by side read as one number ("4 409,000 GBP"):
            // the count says what it counts, the amount follows after a separator.
            let counted = |n: usize, amounts: &[content::Money]| {
                let what = referrals_word(n);
                if amounts.is_empty() {
                    what
                } else {
                    format!("{what} · {}", money(amounts))
                }
            };
            let f = vec![
                ("New".to_string(), counted(r.new_count, &r.new_value)),
                (
                    "Expiring in 7 days".into(),
                    referrals_word(r.expiring_count),
                ),
                ("Accepted".into(), referrals_word(r.accepted_count)),
                ("Won".into(), counted(r.won_count, &r.won_value)),
                ("Lost".into(), referrals_word(r.lost_count)),
                ("Declined".into(), referrals_word(r.declined_count)),
            ];
            body.facts(f);
            if !r.expiring.is_empty() {
                body.heading("Expiring soonest");
                body.list(capped(
                    r.expiring
                        .iter()
                        .map(|l| format!("{}: {} — {}", l.note, l.name, l.value)),
                    r.expiring_count,
                ));
            }
        }
        if let Some(cp) = &c.copilot {
            body.heading("Copilot adoption");
            body.facts(
                cp.distribution
                    .iter()
                    .map(|h| {
                        let tenants = if h.now == 1 { "tenant" } else { "tenants" };
                        let change = match h.delta.as_str() {
                            "" | "0" | "+0" => String::new(),
                            d => format!(" ({d} since a week ago)"),
                        };
                        (h.status.clone(), format!("{} {tenants}{change}", h.now))
                    })
                    .collect(),
            );
            if !cp.worse.is_empty() {
                body.heading("Moved worse");
                body.list(capped(
                    cp.worse
                        .iter()
                        .map(|m| format!("{}: {} → {}", m.tenant, m.from, m.to)),
                    cp.worse.len(),
                ));
            }
        }
        if let Some(m) = &c.mci {
            body.heading("MCI performance");
            body.facts(
                m.plays
                    .iter()
                    .map(|p| {
                        (
                            p.play.clone(),
                            format!(
                                "{} · {} of {} engagements passing",
                                p.eligibility, p.passing, p.total
                            ),
                        )
                    })
                    .collect(),
            );
        }
        if let Some(l) = &c.licenses {
            body.heading("License drops");
            body.list(
                l.drops
                    .iter()
                    .map(|d| format!("{} · {}: {} → {}", d.customer, d.product, d.from, d.to))
                    .collect(),
            );
        }
        if let Some(h) = &c.health {
            body.heading("partnerwatch itself");
            body.facts(vec![
                ("Sweeps failed".into(), h.sweeps_failed.to_string()),
                ("Dead letters".into(), h.dead_letters.to_string()),
            ]);
        }
        body.build()
    }
}

/// "1 referral", "26 referrals".
fn referrals_word(n: usize) -> String {
    format!("{n} referral{}", if n == 1 { "" } else { "s" })
}

/// The first [`content::TOP`] of `lines`, and "… and N more" when `total` is more.
fn capped(lines: impl Iterator<Item = String>, total: usize) -> Vec<String> {
    let mut shown: Vec<String> = lines.take(content::TOP).collect();
    if total > shown.len() {
        shown.push(format!("… and {} more", total - shown.len()));
    }
    shown
}
