//! Tools for people writing rules and templates and running the outbox:
//! `rules test`, `render`, `channels test`, `outbox`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;

use crate::model::{Body, Delivery, DeliveryStatus, Event, Message};
use crate::notify::{Channel, SendOutcome};
use crate::pipeline::Assets;
use crate::store::Store;
use crate::templates::Format;

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

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Sends a real test message through one channel and reports what the far end answered.
    Test {
        /// The channel's name from `channels:`.
        name: String,
    },
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The template's name (e.g. referral_new).
    pub template: String,
    /// The event as JSON.
    #[arg(long, value_name = "FILE")]
    pub event: PathBuf,
    /// The channel type to render for: console, inbox, webhook (text), email (html),
    /// telegram or teams.
    #[arg(long, default_value = "console", value_name = "TYPE")]
    pub channel: String,
}

#[derive(Debug, Args)]
pub struct OutboxArgs {
    /// List the deliveries waiting to be sent (or retried).
    #[arg(long)]
    pub pending: bool,
    /// List the dead-lettered deliveries.
    #[arg(long)]
    pub dead: bool,
    /// Put a dead (or pending) delivery back in the queue now, with its attempts reset; the
    /// next `poll` or the running daemon sends it.
    #[arg(long, value_name = "ID")]
    pub retry: Option<u64>,
}

fn read_event(path: &Path) -> anyhow::Result<Event> {
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

fn show(m: &Message) -> String {
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

pub fn render(config_path: &Path, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let event = read_event(&args.event)?;
    let format = match args.channel.as_str() {
        "console" | "inbox" | "webhook" | "text" => Format::Text,
        "email" | "html" => Format::Html,
        "telegram" => Format::Telegram,
        "teams" => Format::Teams,
        other => anyhow::bail!(
            "--channel {other:?}: use console, inbox, webhook, email, telegram or teams"
        ),
    };
    if !assets.templates.has(&args.template) {
        anyhow::bail!(
            "no template {:?} in {}",
            args.template,
            assets.templates.origin().display()
        );
    }
    let message = assets
        .templates
        .render(&args.template, format, &event)
        .map_err(anyhow::Error::msg)?;
    println!("{}", show(&message));
    Ok(ExitCode::SUCCESS)
}

pub async fn channels(config_path: &Path, command: ChannelsCommand) -> anyhow::Result<ExitCode> {
    let ChannelsCommand::Test { name } = command;
    let config = super::load_config(config_path)?;
    let Some(channel_config) = config.channels.get(&name) else {
        let known: Vec<&str> = config.channels.keys().map(String::as_str).collect();
        anyhow::bail!("no channel named {name:?} (known: {})", known.join(", "));
    };
    let http = crate::http::Http::new(config.http.clone());
    let tokens = crate::auth::TokenProvider::from_config(&config.auth, &config.state_dir).ok();
    let channel = Channel::build(&name, channel_config, http.client(), tokens.as_ref())?;
    let title = "partnerwatch test message".to_string();
    let rest = format!(
        "If you can read this, the channel {name:?} works. Sent {}.",
        Timestamp::now().strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    let message = crate::notify::message_from_text(channel_config.format(), &title, &rest);
    let now = Timestamp::now();
    let delivery = Delivery::pending("test", None, "channels test", &name, message, now);
    match channel.send(&delivery, None).await {
        SendOutcome::Delivered(answer) => {
            println!("{name}: delivered ({answer})");
            Ok(ExitCode::SUCCESS)
        }
        SendOutcome::Retry { after, error } => {
            println!(
                "{name}: not delivered, worth retrying{}: {error}",
                after
                    .map(|a| format!(" after {}s", a.as_secs()))
                    .unwrap_or_default()
            );
            Ok(ExitCode::FAILURE)
        }
        SendOutcome::Failed(error) => {
            println!("{name}: failed: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn outbox(config_path: &Path, args: OutboxArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    if !config.state_dir.join("db").exists() {
        anyhow::bail!(
            "no state in {} yet: run `partnerwatch poll` first",
            config.state_dir.display()
        );
    }
    let store = Store::open(&config.state_dir)?;
    if let Some(id) = args.retry {
        let Some(mut d) = store.deliveries(None)?.into_iter().find(|d| d.id == id) else {
            anyhow::bail!(
                "no delivery {id} in the outbox (`partnerwatch outbox --dead` lists them)"
            );
        };
        if d.status == DeliveryStatus::Sent {
            anyhow::bail!(
                "delivery {id} was already sent {}",
                d.sent_at.map(|t| t.to_string()).unwrap_or_default()
            );
        }
        d.status = DeliveryStatus::Pending;
        d.attempts = 0;
        d.next_attempt_at = Timestamp::now();
        store.update_delivery(&d)?;
        println!(
            "delivery {id} ({} → {}) is queued again; the next poll or the running daemon sends it",
            d.what(),
            d.channel
        );
        return Ok(ExitCode::SUCCESS);
    }
    let all = store.deliveries(None)?;
    let count = |s| all.iter().filter(|d| d.status == s).count();
    println!(
        "outbox: {} pending, {} dead, {} sent",
        count(DeliveryStatus::Pending),
        count(DeliveryStatus::Dead),
        count(DeliveryStatus::Sent)
    );
    let list = |status: DeliveryStatus| {
        for d in all.iter().filter(|d| d.status == status) {
            println!(
                "{:>8}  {:<7} {:<28} {:<14} attempts {}  next {}  {}{}",
                d.id,
                format!("{:?}", d.status).to_lowercase(),
                d.what(),
                d.channel,
                d.attempts,
                d.next_attempt_at.strftime("%Y-%m-%d %H:%M:%S"),
                d.message.title.chars().take(60).collect::<String>(),
                d.last_error
                    .as_deref()
                    .map(|e| format!("\n          last error: {e}"))
                    .unwrap_or_default()
            );
        }
    };
    if args.pending || !args.dead {
        list(DeliveryStatus::Pending);
    }
    if args.dead || !args.pending {
        list(DeliveryStatus::Dead);
    }
    Ok(ExitCode::SUCCESS)
}
