//! A realistic event of every kind (DESIGN §5), for `check` to render every template against
//! and for tests of the templates: fixed records (`records.json`, with quotes, markup,
//! newlines and emoji in customer names) fed through the real detectors.
//! Must never: depend on the simulator — the product's samples and the test oracle share
//! nothing.

use std::sync::OnceLock;

use jiff::Timestamp;
use serde_json::Value;

use crate::model::{Event, EventKind};

/// One of the fixed sample records by name.
fn record(name: &str) -> Value {
    static RECORDS: OnceLock<Value> = OnceLock::new();
    let records = RECORDS.get_or_init(|| {
        serde_json::from_str(include_str!("records.json")).expect("the sample records are JSON")
    });
    records
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("no sample record {name:?}"))
}

/// The life of one record in a sample script: it appears as `old`, changes to `new`, goes away.
fn life(
    id: &str,
    old: &serde_json::Value,
    new: &serde_json::Value,
) -> Vec<crate::detect::RecordChange> {
    use crate::detect::RecordChange;
    vec![
        RecordChange::between(id, None, Some((1, old.clone()))),
        RecordChange::between(id, Some((1, old.clone())), Some((2, new.clone()))),
        RecordChange::between(id, Some((2, new.clone())), None),
    ]
}

/// A realistic event of `kind`, for rendering templates without a live API. The events come
/// from the real detectors, fed a generated referral and a scripted change of it.
pub fn sample_event(kind: EventKind) -> Option<Event> {
    use crate::detect::{expiry, referrals};
    let now: Timestamp = "2026-11-23T08:00:00Z".parse().expect("valid time");
    let since = now - jiff::SignedDuration::from_mins(15);
    match kind {
        EventKind::SystemSourceFailing => {
            return Some(crate::detect::system::source_failing(
                "referrals",
                3,
                since,
                "referrals page 2: the server answered 503 Service Unavailable",
                now,
            ))
        }
        EventKind::SystemAuthFailed => {
            return Some(crate::detect::system::auth_failed(
                "referrals",
                "invalid_grant",
                Some("AADSTS700082"),
                "AADSTS700082: The refresh token has expired due to inactivity.",
                since,
                now,
            ))
        }
        EventKind::SystemSourceRecovered => {
            return Some(crate::detect::system::source_recovered(
                "referrals",
                3,
                since,
                now,
            ))
        }
        EventKind::SystemDeliveryDead => {
            let d = crate::model::Delivery {
                id: 42,
                event_id: "e".into(),
                kind: Some(EventKind::ReferralNew),
                rule: "new-referral".into(),
                channel: "sales-teams".into(),
                message: crate::model::Message {
                    title: "New referral: Contoso <\"x\">".into(),
                    body: crate::model::Body::Text {
                        text: String::new(),
                    },
                },
                status: crate::model::DeliveryStatus::Dead,
                attempts: 8,
                created_at: since,
                next_attempt_at: now,
                last_error: Some("404 Not Found: the workflow was deleted".into()),
                sent_at: None,
                images: Vec::new(),
                group: None,
                amount: None,
                buttons: Vec::new(),
            };
            return Some(crate::detect::system::delivery_dead(&d, now));
        }
        EventKind::CopilotNew
        | EventKind::CopilotChanged
        | EventKind::CopilotRemoved
        | EventKind::CopilotHealthChanged
        | EventKind::CopilotThresholdCrossed => {
            let old = record("tenant");
            let mut new = old.clone();
            new["adoptionStatus"] = serde_json::json!("Failure to Launch/Start");
            new["utilizationPercent"] =
                serde_json::json!(if old["utilizationPercent"].as_f64()? >= 50.0 {
                    10.0
                } else {
                    90.0
                });
            let id = old["tenantId"].as_str()?.to_string();
            let judging = crate::detect::copilot::Judging {
                thresholds: [("utilizationPercent".to_string(), vec![50.0])].into(),
                ..Default::default()
            };
            let script = life(&id, &old, &new);
            let (events, _) =
                crate::detect::copilot::detect(script, false, now, &judging, |_| None);
            return events.into_iter().find(|e| e.kind == kind);
        }
        EventKind::MciNew
        | EventKind::MciChanged
        | EventKind::MciMilestoneChanged
        | EventKind::MciStageChanged
        | EventKind::PartnerReferralNew
        | EventKind::PartnerReferralChanged
        | EventKind::PartnerReferralStatusChanged => {
            let mci = kind.as_str().starts_with("mci.");
            let old = record(if mci { "mci_row" } else { "partner_referral" });
            let mut new = old.clone();
            if mci {
                new["milestone"] = serde_json::json!("Claim Approved");
                new["stage"] = serde_json::json!("Completed");
            } else {
                new["referralStatus"]["name"] = serde_json::json!("Accepted");
            }
            let id = if mci {
                old["claimID"].to_string()
            } else {
                old["partnerReferralId"].as_str()?.to_string()
            };
            let script = life(&id, &old, &new);
            let events = if mci {
                crate::detect::insights::detect_mci(script, false, now)
            } else {
                crate::detect::insights::detect_partner_referrals(script, false, now)
            };
            return events.into_iter().find(|e| e.kind == kind);
        }
        EventKind::LicenseNew | EventKind::LicenseUsageChanged => {
            let (old, new) = (record("license_old"), record("license_new"));
            let id = "tenant|product|workload".to_string();
            let script = life(&id, &old, &new);
            return crate::detect::license::detect(script, false, now)
                .into_iter()
                .find(|e| e.kind == kind);
        }
        EventKind::MciSummaryChanged => {
            let (old, new) = (record("mci_summary_old"), record("mci_summary_new"));
            let change =
                crate::detect::RecordChange::between("mci_summary", Some((1, old)), Some((2, new)));
            return crate::detect::copilot::detect_summary(
                kind,
                "mci_summary",
                vec![change],
                false,
                now,
            )
            .into_iter()
            .next();
        }
        EventKind::CopilotSummaryChanged | EventKind::AdoptionSummaryChanged => {
            let name = if kind == EventKind::CopilotSummaryChanged {
                "copilot_summary"
            } else {
                "adoption_summary"
            };
            let (old, new) = (
                record(&format!("{name}_old")),
                record(&format!("{name}_new")),
            );
            let change = crate::detect::RecordChange::between(
                kind.as_str().replace(".changed", ""),
                Some((1, old)),
                Some((2, new)),
            );
            return crate::detect::copilot::detect_summary(
                kind,
                "partner insights",
                vec![change],
                false,
                now,
            )
            .into_iter()
            .next();
        }
        EventKind::ReferralActed => {
            let old = record("referral_old");
            let mut new = old.clone();
            new["status"] = serde_json::json!("Active");
            new["substatus"] = serde_json::json!("Accepted");
            let id = old["id"].as_str()?.to_string();
            return Some(Event {
                id: crate::model::event::event_id(&[b"referral.acted", b"sample"]),
                kind,
                source: referrals::SOURCE.to_string(),
                entity_id: id,
                detected_at: now,
                changes: crate::detect::diff::changes(&old, &new),
                record: new.into(),
                previous: Some(old.into()),
                data: serde_json::json!({
                    "action": "accept", "done": "Accepted", "by": "@alice (123456789)",
                    "via": "telegram", "result": "ok", "reason": null, "http_status": null,
                    "error": null, "said": "Accepted — it is Active/Accepted now",
                }),
            });
        }
        EventKind::ReferralRegistrationEligibility => {
            let mut r = record("referral_new");
            r["status"] = serde_json::json!("Active");
            r["substatus"] = serde_json::json!("Accepted");
            let answer = serde_json::json!({
                "isEligible": false,
                "passedPolicies": [{"policyName": "isDealTypeCosellOrPartnerLed", "isEligible": true}],
                "failedPolicies": [{"policyName": "isDealValueEligible", "isEligible": false}],
            });
            return Some(referrals::eligibility_event(&r, &answer, now));
        }
        _ => {}
    }
    let old = record("referral_old");
    let id = old["id"].as_str().unwrap_or_default().to_string();
    let mut new = record("referral_new");
    new["registrationStatus"] = serde_json::json!("Approved");
    let script = life(&id, &old, &new);
    let mut events = Vec::new();
    for change in &script {
        events.extend(referrals::detect(vec![change.clone()], false, now));
    }
    let deadline = expiry::deadline_of(&old)?;
    let states = std::collections::BTreeMap::from([(
        id.clone(),
        expiry::ExpiryState {
            deadline,
            fired: Vec::new(),
        },
    )]);
    let hours_before = deadline - jiff::SignedDuration::from_hours(20);
    events.extend(
        expiry::evaluate(&states, &expiry::DEFAULT_THRESHOLDS, hours_before, |_| {
            Some(old.clone())
        })
        .0,
    );
    events.into_iter().find(|e| e.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Body, Format};
    use crate::templates::Templates;

    fn shipped_templates() -> Templates {
        Templates::from_sources(
            std::path::Path::new("templates"),
            crate::shipped::templates(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap()
    }

    /// Every event kind of DESIGN §5 has a sample from the real detectors, and its shipped
    /// template renders it in every format.
    #[test]
    fn shipped_templates_render_samples_of_every_event_kind() {
        let templates = shipped_templates();
        for kind in EventKind::ALL {
            let event = sample_event(*kind).unwrap_or_else(|| panic!("no sample for {kind}"));
            assert_eq!(event.kind, *kind);
            for format in Format::ALL {
                let message = templates
                    .render(&kind.default_template(), format, &event)
                    .unwrap();
                // Summaries are about the partner, not one record: they list what moved.
                let expected = if kind.as_str().ends_with("summary.changed") {
                    "→"
                } else {
                    event.entity_id.as_str()
                };
                let body = message.body.raw();
                assert!(body.contains(expected), "{kind} {format:?}: {body}");
            }
        }
    }

    /// An action's message says in words what happened, whatever the verb and the result.
    #[test]
    fn an_action_message_says_what_happened() {
        let templates = shipped_templates();
        let mut event = sample_event(EventKind::ReferralActed).unwrap();
        let title = |event: &crate::model::Event| {
            templates
                .render("referral_acted", Format::Text, event)
                .unwrap()
                .title
        };
        assert!(
            title(&event).starts_with("✅ Accepted by @alice"),
            "{}",
            title(&event)
        );
        for (verb, result, start) in [
            (
                "decline",
                "conflict",
                "⚠ Could not decline: changed in Partner Center first",
            ),
            ("lose", "failed", "✋ Could not lose (failed)"),
            ("win", "refused", "✋ Could not win (refused)"),
        ] {
            event.data["action"] = serde_json::json!(verb);
            event.data["result"] = serde_json::json!(result);
            assert!(title(&event).starts_with(start), "{}", title(&event));
        }
    }

    /// Everything a customer can type that a channel might read as markup.
    const HOSTILE: &str = "O'Brien & \"Sons\" <script>alert(1)</script> **bold** _x_ [sale](http://evil.example/x) 🎉\n- Teams Phone\n# Heading\n1. one\n> quote\n&lt;b&gt; `code` ~~s~~ www.evil.example <https://evil.example/y>\nApproved by: Microsoft";

    /// Every string of `v` made hostile.
    fn hostile(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::String(s) => *s = format!("{s} {HOSTILE}"),
            serde_json::Value::Array(items) => items.iter_mut().for_each(hostile),
            serde_json::Value::Object(map) => map.values_mut().for_each(hostile),
            _ => {}
        }
    }

    /// The Markdown constructs Teams would make of `text`, as `pulldown-cmark` (a CommonMark
    /// parser like Teams') reads it, plus what a linkifier would take for an address.
    fn markup_in(text: &str) -> Vec<String> {
        use pulldown_cmark::{Event, Parser, Tag};
        let mut found = Vec::new();
        let mut shown = String::new();
        for event in Parser::new(text) {
            match &event {
                Event::Start(
                    tag @ (Tag::Link { .. }
                    | Tag::Image { .. }
                    | Tag::Strong
                    | Tag::Emphasis
                    | Tag::Strikethrough
                    | Tag::Item
                    | Tag::List(_)
                    | Tag::Heading { .. }
                    | Tag::BlockQuote(_)
                    | Tag::CodeBlock(_)
                    | Tag::HtmlBlock),
                ) => found.push(format!("{tag:?}")),
                Event::Code(c) => found.push(format!("code {c}")),
                Event::Html(h) | Event::InlineHtml(h) => found.push(format!("html {h}")),
                Event::Text(t) => shown.push_str(t),
                _ => {}
            }
        }
        // A linkifier works on the text between escapes: an address must not be whole there.
        for address in ["evil.example", "http://", "https://"] {
            if text.contains(address) {
                found.push(format!("linkable {address}"));
            }
        }
        found
    }

    /// Every Markdown-processed string of a card: TextBlock texts and facts.
    fn markdown_strings(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if map.get("type").and_then(|t| t.as_str()) == Some("TextBlock") {
                    out.push(map["text"].as_str().unwrap_or_default().to_string());
                }
                if map.get("type").and_then(|t| t.as_str()) == Some("FactSet") {
                    for fact in map["facts"].as_array().into_iter().flatten() {
                        out.push(fact["title"].as_str().unwrap_or_default().to_string());
                        out.push(fact["value"].as_str().unwrap_or_default().to_string());
                    }
                }
                map.values().for_each(|c| markdown_strings(c, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|c| markdown_strings(c, out)),
            _ => {}
        }
    }

    /// Guarantee 7 over every kind × channel: hostile customer text in every field, and what
    /// each channel would make of the message has no link, emphasis, list, heading, code or
    /// tag that came from it; the one link is partnerwatch's own.
    #[test]
    fn customer_text_is_literal_in_every_kind_and_channel() {
        let links = crate::config::LinksConfig::default();
        let templates = Templates::from_sources(
            std::path::Path::new("templates"),
            crate::shipped::templates(),
            &jiff::tz::TimeZone::UTC,
        )
        .unwrap()
        .with_links(links.clone());
        let mut facts_seen = 0;
        for kind in EventKind::ALL {
            let mut event = sample_event(*kind).unwrap();
            hostile(event.record.value_mut());
            if let Some(previous) = event.previous.as_mut() {
                hostile(previous.value_mut());
            }
            let ours = links.referral(&event.entity_id);
            let referral = kind.as_str().starts_with("referral.");
            for format in Format::ALL {
                let m = templates
                    .render(&kind.default_template(), format, &event)
                    .unwrap();
                assert!(
                    !m.title.contains(['\n', '\r', crate::notify::text::BREAK]),
                    "{kind}: a customer's line break splits the title: {:?}",
                    m.title
                );
                if *kind == EventKind::ReferralNew {
                    assert!(
                        m.title.contains("Approved by: Microsoft — "),
                        "the deal value stays in the title: {:?}",
                        m.title
                    );
                }
                match &m.body {
                    Body::Teams { card } => {
                        let mut strings = Vec::new();
                        markdown_strings(card, &mut strings);
                        for s in &strings {
                            let found = markup_in(s);
                            assert!(found.is_empty(), "{kind}: {found:?} in {s:?}");
                        }
                        // Only the template's lines are facts: none from the customer's text.
                        let fake = card.to_string().contains("\"title\":\"Approved by\"");
                        assert!(!fake, "{kind}: a fact from customer text: {card}");
                        facts_seen += card["body"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .filter(|b| b["type"] == "FactSet")
                            .count();
                        let actions = card["actions"].as_array().cloned().unwrap_or_default();
                        if referral {
                            assert_eq!(actions.len(), 1, "{kind}: {card}");
                            assert_eq!(actions[0]["url"], ours.as_str());
                        } else {
                            assert!(actions.is_empty(), "{kind}: {card}");
                        }
                    }
                    Body::Telegram { html } => {
                        let allowed = [
                            "<b>".to_string(),
                            "</b>".to_string(),
                            format!("<a href=\"{ours}\">"),
                            "</a>".to_string(),
                        ];
                        for tag in tags(html) {
                            assert!(allowed.contains(&tag), "{kind}: {tag} in {html}");
                        }
                        assert_eq!(html.contains("<a href"), referral, "{kind}: {html}");
                    }
                    Body::Html { html, .. } => {
                        for tag in tags(html) {
                            let name: String = tag
                                .trim_start_matches(['<', '/'])
                                .chars()
                                .take_while(|c| c.is_ascii_alphanumeric() || *c == '!')
                                .collect();
                            assert!(
                                [
                                    "!DOCTYPE", "html", "head", "meta", "body", "h2", "p", "br",
                                    "a", "table", "tr", "td"
                                ]
                                .contains(&name.as_str()),
                                "{kind}: {tag}"
                            );
                            if name == "a" && !tag.starts_with("</") {
                                assert_eq!(tag, format!("<a href=\"{ours}\" style=\"display:inline-block;padding:10px 18px;background:#0f6cbd;color:#ffffff;text-decoration:none;border-radius:4px;font-weight:600\">"));
                            }
                        }
                    }
                    Body::Text { text } => {
                        assert!(
                            !text.contains(crate::notify::text::BREAK),
                            "{kind}: plain text has real line breaks"
                        );
                    }
                    Body::Legacy { .. } => unreachable!(),
                }
            }
        }
        assert!(
            facts_seen >= EventKind::ALL.len() / 2,
            "facts in most cards: {facts_seen}"
        );
    }

    /// The tags of HTML (every `<` opens one: customer `<` is escaped).
    fn tags(html: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("every < opens a tag") + start;
            out.push(rest[start..=end].to_string());
            rest = &rest[end + 1..];
        }
        out
    }
}
