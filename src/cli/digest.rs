//! `partnerwatch digest NAME`: a digest for the week up to now — printed as text, written as an
//! HTML preview (charts inside the file), or sent through its channels.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;

use crate::clock::SystemClock;
use crate::digest;
use crate::pipeline::{Assets, Pipeline};

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The digest's `name` in the configuration's `digests:`.
    pub name: String,
    /// Write the HTML version to FILE (the charts are inside it) to open in a browser.
    #[arg(long, value_name = "FILE")]
    pub preview: Option<PathBuf>,
    /// Send it now through its channels (the schedule is not affected).
    #[arg(long)]
    pub send: bool,
}

pub async fn digest(config_path: &Path, args: DigestArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let pipeline = Pipeline::build(config, assets, Arc::new(SystemClock))?;
    let config = digest::find(&pipeline.config.digests, &args.name)?.clone();
    let now = pipeline.clock.now();
    let composed = digest::compose(&pipeline.digest_inputs(), &config, now)?;
    let templates = &pipeline.assets.templates;
    if let Some(file) = &args.preview {
        let html = composed.preview(templates)?;
        std::fs::write(file, html)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        println!("preview written to {}", file.display());
    }
    if args.send {
        let deliveries = composed.deliveries(
            templates,
            &pipeline.config.channels,
            &config,
            &format!("digest:{}/manual/{now}", config.name),
            now,
        )?;
        pipeline.store.commit_digest(None, now, &deliveries)?;
        let report = pipeline.deliver().await?;
        println!(
            "digest {:?}: {} message(s) sent, {} retrying, {} dead",
            config.name, report.sent, report.retrying, report.dead
        );
        if report.sent < deliveries.len() {
            return Ok(ExitCode::FAILURE);
        }
    }
    if args.preview.is_none() && !args.send {
        print!("{}", composed.text(templates)?);
    }
    Ok(ExitCode::SUCCESS)
}
