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
    /// Pages one sweep of one source may read: a page chain that goes on past it (an API
    /// that hands out fresh next links forever) fails the sweep.
    #[serde(default = "default_sweep_max_pages")]
    pub sweep_max_pages: u32,
    /// Bytes one sweep of one source may read, over all its pages.
    #[serde(default = "default_sweep_max_bytes")]
    pub sweep_max_bytes: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            backoff: default_backoff(),
            timeout: default_timeout(),
            sweep_max_pages: default_sweep_max_pages(),
            sweep_max_bytes: default_sweep_max_bytes(),
        }
    }
}

fn default_retries() -> u32 {
    4
}
fn default_backoff() -> Every {
    Every(Duration::from_secs(2))
}
/// 5,000 pages of 100 referrals is half a million: far more than a partner has.
fn default_sweep_max_pages() -> u32 {
    5_000
}
/// 1 GiB.
fn default_sweep_max_bytes() -> u64 {
    1 << 30
}
fn default_timeout() -> Every {
    Every(Duration::from_secs(60))
}
