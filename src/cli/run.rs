//! `partnerwatch run`: the daemon.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::SystemClock;
use crate::pipeline::{Assets, Pipeline};

/// How often the outbox is looked at for retries between polls.
const DELIVERY_TICK: Duration = Duration::from_secs(5);

pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let pipeline = Pipeline::build(config, assets, Arc::new(SystemClock))?;
    if pipeline.sources.is_empty() {
        anyhow::bail!(
            "no sources configured: add sources.referrals to {}",
            config_path.display()
        );
    }
    let metrics = Arc::new(crate::health::Metrics::default());
    if let Some(addr) = pipeline.config.listen.clone() {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => {
                tracing::info!("health and metrics on http://{addr}/healthz and /metrics");
                crate::health::serve(listener, Arc::clone(&metrics), pipeline.store.clone());
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot serve /healthz and /metrics there (set `listen`); running without them")
            }
        }
    }
    let stop = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(wait_for_signal(Arc::clone(&stop)));
    tracing::info!(
        sources = pipeline.sources.len(),
        "partnerwatch running; Ctrl-C or SIGTERM stops it"
    );

    for digest in &pipeline.config.digests {
        let next = digest.slots.next(pipeline.clock.now());
        if let Some(next) = next {
            tracing::info!(digest = %digest.name, next = %next.to_zoned(pipeline.config.timezone.clone()), "digest scheduled");
        }
    }
    // Deliveries left pending by an earlier run (a crash, a stop) go out first, with a
    // digest whose slot passed while the service was down (less than a day ago).
    let mut digest_error = None;
    queue_digests(&pipeline, &mut digest_error);
    deliver(&pipeline, &metrics).await;
    let mut next_due: Vec<Instant> = pipeline.sources.iter().map(|_| Instant::now()).collect();
    loop {
        for (i, source) in pipeline.sources.iter().enumerate() {
            if next_due[i] > Instant::now() {
                continue;
            }
            next_due[i] = Instant::now() + source.every();
            // A failed sweep changes nothing; `poll` logs it and counts it toward
            // `system.source_failing`. The next try comes on schedule.
            let result = pipeline.poll(source, false).await;
            let events = result
                .as_ref()
                .map(|r| r.events.as_slice())
                .unwrap_or_default();
            metrics.sweep(source.name(), result.is_ok(), events, pipeline.clock.now());
        }
        queue_digests(&pipeline, &mut digest_error);
        let retry = deliver(&pipeline, &metrics).await;
        // A channel that asked to wait (Retry-After) is tried again as soon as it may be.
        let retry = retry.map(|at| {
            let wait = at.duration_since(pipeline.clock.now());
            Instant::now() + Duration::try_from(wait).unwrap_or(Duration::ZERO)
        });
        let wake = next_due
            .iter()
            .min()
            .copied()
            .unwrap_or_else(Instant::now)
            .min(Instant::now() + DELIVERY_TICK)
            .min(retry.unwrap_or(Instant::now() + DELIVERY_TICK));
        tokio::select! {
            _ = tokio::time::sleep_until(wake) => {}
            _ = stop.notified() => break,
        }
    }
    pipeline.store.flush()?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Queues the digests that are due; the loop wakes at least every [`DELIVERY_TICK`], so a
/// slot is noticed within seconds.
/// An error is logged when it first happens, not on every tick while it lasts.
fn queue_digests(pipeline: &Pipeline, last_error: &mut Option<String>) {
    match crate::digest::enqueue_due(&pipeline.digest_inputs(), pipeline.clock.now()) {
        Ok(_) => *last_error = None,
        Err(e) => {
            let e = e.to_string();
            if last_error.as_deref() != Some(e.as_str()) {
                tracing::error!(error = %e, "cannot prepare a digest; it is tried again every few seconds while its slot is due");
            }
            *last_error = Some(e);
        }
    }
}

/// One pass over the outbox; returns when the earliest retry it scheduled is due.
async fn deliver(pipeline: &Pipeline, metrics: &crate::health::Metrics) -> Option<jiff::Timestamp> {
    match pipeline.deliver().await {
        Ok(r) => {
            if r.sent + r.retrying + r.dead > 0 {
                metrics.delivered(r.sent, r.dead);
                tracing::info!(
                    sent = r.sent,
                    retrying = r.retrying,
                    dead = r.dead,
                    "delivered"
                );
            }
            r.next_retry
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot read the outbox");
            None
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM. The loop notices between steps, so work in flight finishes.
async fn wait_for_signal(stop: Arc<tokio::sync::Notify>) {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stop requested; finishing the work in flight");
    stop.notify_one();
}
