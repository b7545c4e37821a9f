//! `partnerwatch render TEMPLATE (--event FILE | --sample) [--channel TYPE]`: one template,
//! as one kind of channel would get it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::pipeline::Assets;
use crate::templates::Format;

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The template's name (e.g. referral_new).
    pub template: String,
    /// The event as JSON (e.g. one line of `partnerwatch events --json`).
    #[arg(long, value_name = "FILE", required_unless_present = "sample")]
    pub event: Option<PathBuf>,
    /// Render a built-in sample event instead: of this kind, or of the kind the template is
    /// named after when no kind is given (referral_new → referral.new).
    #[arg(long, value_name = "KIND", num_args = 0..=1, default_missing_value = "", conflicts_with = "event")]
    pub sample: Option<String>,
    /// The channel type to render for: console, inbox, webhook (text), email (html),
    /// telegram or teams.
    #[arg(long, default_value = "console", value_name = "TYPE")]
    pub channel: String,
}

pub fn render(config_path: &Path, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let event = match (&args.event, &args.sample) {
        (Some(file), _) => super::rules::read_event(file)?,
        (None, Some(kind)) => {
            // The kind whose default template this is (referral_new → referral.new).
            let kind = if kind.is_empty() {
                crate::model::EventKind::ALL
                    .iter()
                    .find(|k| k.default_template() == args.template)
                    .map_or_else(|| args.template.clone(), |k| k.as_str().to_string())
            } else {
                kind.clone()
            };
            let known = || {
                crate::model::EventKind::ALL
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let parsed = crate::model::EventKind::ALL
                .iter()
                .find(|k| k.as_str() == kind)
                .copied()
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--sample {kind:?} is not an event kind; use one of {}",
                        known()
                    )
                })?;
            crate::samples::sample_event(parsed)
                .ok_or_else(|| anyhow::anyhow!("there is no sample {kind} event"))?
        }
        (None, None) => anyhow::bail!("give --event FILE or --sample"),
    };
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
    println!("{}", super::rules::show(&message));
    Ok(ExitCode::SUCCESS)
}
