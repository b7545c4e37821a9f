//! `partnerwatch render TEMPLATE --event FILE [--channel TYPE]`: one template, as one kind of
//! channel would get it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use crate::pipeline::Assets;
use crate::templates::Format;

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

pub fn render(config_path: &Path, args: RenderArgs) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let event = super::rules::read_event(&args.event)?;
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
