//! `partnerwatch channels test NAME`: a real test message through one channel, and what the far
//! end answered.

use std::path::Path;
use std::process::ExitCode;

use clap::Subcommand;
use jiff::Timestamp;

use crate::model::Delivery;
use crate::notify::{Channel, SendOutcome};

#[derive(Debug, Subcommand)]
pub enum ChannelsCommand {
    /// Sends a real test message through one channel and reports what the far end answered.
    Test {
        /// The channel's name from `channels:`.
        name: String,
    },
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
    let channel = Channel::build(&name, channel_config, http.client(), tokens.as_ref())
        .map_err(|e| config.error_at(&format!("channels.{name}"), e))?;
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
