//! `partnerwatch rules test RULE --event FILE`: whether a rule matches an event, and the exact
//! message each of its channels would get.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::model::{Body, Event, Message};
use crate::pipeline::Assets;

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Shows whether a rule matches an event and the exact message each of its channels would get.
    Test {
        /// The rule's name.
        rule: String,
        /// The event as JSON (what `partnerwatch events --json` prints, one event).
        #[arg(long, value_name = "FILE")]
        event: PathBuf,
    },
}

pub(super) fn read_event(path: &Path) -> anyhow::Result<Event> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    let parsed =
        serde_json::from_str::<Event>(&text).or_else(|_| serde_json::from_str::<Event>(line));
    parsed.map_err(|e| {
        anyhow::anyhow!(
            "{}: not an event ({e}); `partnerwatch events --json` prints events in this form",
            path.display()
        )
    })
}

pub(super) fn show(m: &Message) -> String {
    match &m.body {
        Body::Teams { card } => serde_json::to_string_pretty(card).unwrap_or_default(),
        Body::Html { html, text } => format!(
            "subject: {}\n--- text ---\n{text}\n--- html ---\n{html}",
            m.title
        ),
        other => other.raw().into_owned(),
    }
}

pub fn rules(config_path: &Path, command: RulesCommand) -> anyhow::Result<ExitCode> {
    let RulesCommand::Test { rule, event } = command;
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let event = read_event(&event)?;
    let Some(r) = assets.rules.get(&rule) else {
        let known: Vec<&str> = assets.rules.rules.iter().map(|r| r.name.as_str()).collect();
        anyhow::bail!("no rule named {rule:?} (known: {})", known.join(", "));
    };
    if !r.matches(&event) {
        let why = if !r.enabled {
            "the rule is disabled".to_string()
        } else if !r.kinds.contains(&event.kind) {
            format!("its `on` does not include {}", event.kind)
        } else if let Some(w) = r.when.as_ref().filter(|w| w.eval(&event) != Ok(true)) {
            match w.eval(&event) {
                Ok(_) => format!("`when: {}` is false for it", w.source()),
                Err(e) => format!("`when: {}` cannot be evaluated on it: {e}", w.source()),
            }
        } else {
            format!(
                "the event's threshold is not in its `before` ({:?})",
                event.data.get("threshold")
            )
        };
        println!(
            "rule {rule:?} does not match this {} event: {why}",
            event.kind
        );
        return Ok(ExitCode::from(1));
    }
    println!("rule {rule:?} matches this {} event; it sends:", event.kind);
    for channel in &r.channels {
        let format = config.channels[channel].format();
        let template = r.template_for(event.kind);
        let message = assets
            .templates
            .render(&template, format, &event)
            .map_err(anyhow::Error::msg)?;
        println!(
            "\n── {channel} ({}, template {template}) ──\n{}",
            config.channels[channel].type_name(),
            show(&message)
        );
    }
    Ok(ExitCode::SUCCESS)
}
