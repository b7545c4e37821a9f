//! `http:` — how the HTTP layer under every source calls the APIs.

use std::time::Duration;

use serde::Deserialize;

use crate::duration::Every;

/// `http:` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Retries of one call after the first attempt.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The first retry waits this long, each further one twice as long (with jitter).
    #[serde(default = "default_backoff")]
    pub backoff: Every,
    /// How long one call may take.
    #[serde(default = "default_timeout")]
    pub timeout: Every,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            backoff: default_backoff(),
            timeout: default_timeout(),
        }
    }
}

fn default_retries() -> u32 {
    4
}
fn default_backoff() -> Every {
    Every(Duration::from_secs(2))
}
fn default_timeout() -> Every {
    Every(Duration::from_secs(60))
}
