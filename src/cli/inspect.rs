//! `partnerwatch events` and `partnerwatch history`: read-only looks into the state folder.

use crate::config::Config;
use std::fmt::Write;

use clap::Args;
use jiff::Timestamp;
use serde_json::Value;

use crate::config::Every;
use crate::detect::diff;
use crate::model::event_data::{Closed, EventData};
use crate::model::EventKind;
use crate::store::Store;

use super::Output;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events detected within this long before now (e.g. 7d, 12h).
    #[arg(long, default_value = "7d", value_name = "DURATION")]
    pub since: Every,
    /// Only kinds matching this glob (e.g. 'referral.*', referral.expiring).
    #[arg(long, value_name = "GLOB")]
    pub kind: Option<String>,
    /// Print each event as one line of JSON (the form `rules test --event` reads).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The record's id (a referral id, …).
    pub id: String,
}

/// The state database of the configuration at `config_path`, for a command that reads it.
pub(super) fn open_store(config: &Config) -> anyhow::Result<Store> {
    if !config.state_dir.join("db").exists() {
        anyhow::bail!(
            "no state in {} yet: run `partnerwatch poll` first",
            config.state_dir.display()
        );
    }
    Ok(Store::open(&config.state_dir)?)
}

pub fn events(store: &Store, args: &EventsArgs) -> anyhow::Result<Output> {
    let matcher = match &args.kind {
        Some(glob) => Some(
            globset::Glob::new(glob)
                .map_err(|e| anyhow::anyhow!("--kind {glob:?}: {e}"))?
                .compile_matcher(),
        ),
        None => None,
    };
    let since = Timestamp::now() - args.since.signed();
    let mut out = String::new();
    let mut shown = 0;
    for event in store.events_since(since)? {
        if matcher
            .as_ref()
            .is_some_and(|m| !m.is_match(event.kind.as_str()))
        {
            continue;
        }
        shown += 1;
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&event)?)?;
        } else {
            writeln!(
                out,
                "{}  {:<32} {}  {}",
                event.detected_at.strftime("%Y-%m-%d %H:%M"),
                event.kind.as_str(),
                event.entity_id,
                summary(event.kind, &event.record, &event.data)
            )?;
        }
    }
    if shown == 0 && !args.json {
        writeln!(
            out,
            "no events in the last {}{}",
            args.since,
            args.kind
                .as_ref()
                .map(|k| format!(" matching {k}"))
                .unwrap_or_default()
        )?;
    }
    Ok(Output::text(out))
}

/// A few words about an event for one line of a listing.
fn summary(kind: EventKind, record: &Value, data: &Value) -> String {
    let name = record
        .pointer("/customerProfile/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .replace('\n', " ");
    let extra = match kind {
        EventKind::ReferralExpiring => {
            format!(" ({} left)", data["threshold"].as_str().unwrap_or("?"))
        }
        EventKind::ReferralStatusChanged => format!(
            " ({} → {})",
            data["from"].as_str().unwrap_or("?"),
            data["to"].as_str().unwrap_or("?")
        ),
        EventKind::ReferralClosed => format!(
            " ({})",
            Closed::from_data(data).map_or_else(|| "?".to_string(), |d| d.outcome)
        ),
        _ => String::new(),
    };
    format!("{name}{extra}")
}

pub fn history(store: &Store, args: &HistoryArgs) -> anyhow::Result<Output> {
    let mut out = String::new();
    for dataset in store.datasets()? {
        let current = store
            .records(&dataset)?
            .get(&args.id)?
            .map(|r| r.json())
            .transpose()?;
        let earlier = store.history(&dataset, &args.id)?;
        if current.is_none() && earlier.is_empty() {
            continue;
        }
        let total = earlier.len() + usize::from(current.is_some());
        writeln!(out, "{dataset} {} — {total} version(s) kept", args.id)?;
        let mut versions: Vec<(String, Value)> = earlier
            .into_iter()
            .enumerate()
            .map(|(i, (until, v))| {
                (
                    format!(
                        "version {} — replaced {}",
                        i + 1,
                        until.strftime("%Y-%m-%d %H:%M UTC")
                    ),
                    v,
                )
            })
            .collect();
        match current {
            Some(c) => {
                let when = store
                    .last_sweep_at(&dataset)?
                    .map(|t| format!(" (last sweep {})", t.strftime("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default();
                versions.push((format!("current{when}"), c));
            }
            None => writeln!(
                out,
                "(no longer listed: the last version below was removed)"
            )?,
        }
        let mut previous: Option<&Value> = None;
        for (label, value) in &versions {
            writeln!(out, "\n── {label}")?;
            match previous {
                None => writeln!(out, "{}", serde_json::to_string_pretty(value)?)?,
                Some(prev) => {
                    let changes = diff::changes(prev, value);
                    if changes.is_empty() {
                        writeln!(out, "  (same content)")?;
                    }
                    for c in changes {
                        write_change(&mut out, &c.path, &c.old, &c.new)?;
                    }
                }
            }
            previous = Some(value);
        }
        return Ok(Output::text(out));
    }
    anyhow::bail!("no record with id {:?} in the state folder", args.id)
}

/// One field change; long or multi-line text is diffed line by line.
fn write_change(out: &mut impl Write, path: &str, old: &Value, new: &Value) -> std::fmt::Result {
    if let (Value::String(a), Value::String(b)) = (old, new) {
        if a.contains('\n') || b.contains('\n') || a.len() > 60 || b.len() > 60 {
            writeln!(out, "  {path}:")?;
            let diff = similar::TextDiff::from_lines(a.as_str(), b.as_str());
            for change in diff.iter_all_changes() {
                let sign = match change.tag() {
                    similar::ChangeTag::Delete => "-",
                    similar::ChangeTag::Insert => "+",
                    similar::ChangeTag::Equal => " ",
                };
                write!(out, "    {sign} {}", change.value())?;
                if change.missing_newline() {
                    writeln!(out)?;
                }
            }
            return Ok(());
        }
    }
    writeln!(out, "  {path}: {old} → {new}")
}
