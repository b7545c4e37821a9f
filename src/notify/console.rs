//! The `console` channel: prints each message to standard output.

use std::io::Write;

use super::SendOutcome;
use crate::model::Delivery;

#[derive(Debug)]
pub struct Console;

impl Console {
    pub fn send(&self, d: &Delivery) -> SendOutcome {
        let text = format!(
            "── {} · rule {} → {} ──\n{}\n\n",
            d.what(),
            d.rule,
            d.channel,
            d.message.body.raw().trim_end()
        );
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Ok(()) => SendOutcome::Delivered("printed".into()),
            Err(e) => SendOutcome::Retry {
                after: None,
                error: format!("cannot write to standard output: {e}"),
            },
        }
    }
}
