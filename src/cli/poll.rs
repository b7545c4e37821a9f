//! `partnerwatch poll`: one cycle, deliver, exit.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::clock::SystemClock;
use crate::pipeline::{Assets, Pipeline, PollOptions, PollReport};

#[derive(Debug, Args)]
pub struct PollArgs {
    /// Poll only this source (e.g. referrals).
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Print what would be sent and commit nothing: no state is written, nothing is delivered.
    #[arg(long)]
    pub dry_run: bool,
    /// Take this poll's removals even if they are more than `max_removed_share` of a source's
    /// records (a sweep that would remove that many is otherwise refused as implausible).
    #[arg(long)]
    pub accept_removals: bool,
}

pub async fn poll(config_path: &Path, args: PollArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let pipeline = Pipeline::build(config, assets, Arc::new(SystemClock))?;
    let names: Vec<&'static str> = pipeline.sources.iter().map(|s| s.name()).collect();
    if let Some(only) = &args.source {
        if !names.contains(&only.as_str()) {
            anyhow::bail!(
                "no source named {only:?} is configured (configured: {})",
                names.join(", ")
            );
        }
    }
    if names.is_empty() {
        anyhow::bail!(
            "no sources configured: add sources.referrals to {}",
            config_path.display()
        );
    }
    // On a thread of its own, as the daemon sweeps ([`super::on_sweep_thread`]).
    super::on_sweep_thread(move || async move { sweep_and_deliver(&pipeline, &args).await }).await?
}

/// The poll itself: every source asked for, then the deliveries (without `--dry-run`).
async fn sweep_and_deliver(pipeline: &Pipeline, args: &PollArgs) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    for source in &pipeline.sources {
        if args
            .source
            .as_deref()
            .is_some_and(|only| only != source.name())
        {
            continue;
        }
        let options = PollOptions {
            dry_run: args.dry_run,
            accept_removals: args.accept_removals,
        };
        match pipeline.poll_with(source, options).await {
            Ok(report) => print_report(&report, args.dry_run),
            Err(e) => {
                failed = true;
                eprintln!(
                    "error: {}: sweep failed, nothing was changed: {e}",
                    source.name()
                );
            }
        }
    }
    if !args.dry_run {
        let delivered = pipeline.deliver().await?;
        println!(
            "delivered {} message(s){}{}",
            delivered.sent,
            if delivered.retrying > 0 {
                format!(", {} to retry", delivered.retrying)
            } else {
                String::new()
            },
            if delivered.dead > 0 {
                format!(", {} dead-lettered", delivered.dead)
            } else {
                String::new()
            },
        );
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(super) fn print_report(r: &PollReport, dry_run: bool) {
    let mut counts: std::collections::BTreeMap<crate::model::EventKind, usize> = Default::default();
    for e in &r.events {
        *counts.entry(e.kind).or_default() += 1;
    }
    let events = if counts.is_empty() {
        "none".to_string()
    } else {
        counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "{}: {} records in {} page(s), {} unchanged{}; events: {events}",
        r.source,
        r.records,
        r.pages,
        r.unchanged,
        if r.baseline {
            " (baseline: what exists is remembered, not announced)"
        } else if r.partial {
            " (incremental: only what was updated since the last sweep)"
        } else {
            ""
        },
    );
    if dry_run {
        for d in &r.deliveries {
            println!(
                "── would send {} · rule {} → {} ──\n{}\n",
                d.what(),
                d.rule,
                d.channel,
                d.message.body.raw().trim_end()
            );
        }
        println!(
            "dry run: {} message(s) would be sent; nothing was committed",
            r.deliveries.len()
        );
    }
}
