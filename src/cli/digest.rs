//! `partnerwatch digest NAME`: a digest for the week up to now — printed as text, written as an
//! HTML preview (charts inside the file), or sent through its channels.

use std::path::PathBuf;

use clap::Args;

use crate::digest;
use crate::pipeline::Pipeline;

use super::Output;

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

/// Composes the digest `args.name` now. With `--send` its deliveries are queued and, unless
/// the running daemon answers (it sends them on its next tick), sent at once.
pub async fn digest(
    pipeline: &Pipeline,
    args: &DigestArgs,
    in_daemon: bool,
) -> anyhow::Result<Output> {
    let mut out = Output::default();
    let config = digest::find(&pipeline.config.digests, &args.name)?.clone();
    let now = pipeline.clock.now();
    let composed = digest::compose(&pipeline.digest_inputs(), &config, now)?;
    let templates = &pipeline.assets.templates;
    if let Some(file) = &args.preview {
        let html = composed.preview(templates)?;
        out.files.push((file.clone(), html));
        out.text
            .push_str(&format!("preview written to {}\n", file.display()));
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
        if in_daemon {
            out.text.push_str(&format!(
                "digest {:?}: {} message(s) queued; the running daemon sends them\n",
                config.name,
                deliveries.len()
            ));
            return Ok(out);
        }
        let report = pipeline.deliver().await?;
        out.text.push_str(&format!(
            "digest {:?}: {} message(s) sent, {} retrying, {} dead\n",
            config.name, report.sent, report.retrying, report.dead
        ));
        if report.sent < deliveries.len() {
            out.code = 1;
        }
    }
    if args.preview.is_none() && !args.send {
        out.text = composed.text(templates)?;
    }
    Ok(out)
}
