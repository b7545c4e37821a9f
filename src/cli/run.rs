//! `partnerwatch run`: the daemon.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::SystemClock;
use crate::pipeline::{Assets, Pipeline};
use crate::scheduler::{Scheduler, Tick};

pub async fn run(config_path: &Path) -> anyhow::Result<ExitCode> {
    let config = super::load_config(config_path)?;
    let assets = Assets::from_config(&config)?;
    let pipeline = Arc::new(Pipeline::build(config, assets, Arc::new(SystemClock))?);
    if pipeline.sources.is_empty() {
        anyhow::bail!(
            "no sources configured: add sources.referrals to {}",
            config_path.display()
        );
    }
    let metrics = Arc::new(crate::health::Metrics::default());
    // Removes the daemon file on a clean stop.
    let mut _announced = None;
    if let Some(addr) = pipeline.config.listen.clone() {
        match tokio::net::TcpListener::bind(&addr).await {
            Ok(listener) => {
                let bound = listener
                    .local_addr()
                    .map_or(addr.clone(), |a| a.to_string());
                tracing::info!("health and metrics on http://{bound}/healthz and /metrics");
                let (api, announced) = super::local::announce(
                    &pipeline.config.state_dir,
                    &bound,
                    Arc::clone(&pipeline),
                );
                _announced = Some(announced);
                crate::health::serve(
                    listener,
                    Arc::clone(&metrics),
                    pipeline.store.clone(),
                    Some((super::local::ROUTE, api)),
                );
            }
            Err(e) => {
                tracing::warn!(%addr, error = %e, "cannot serve /healthz and /metrics there (set `listen`); running without them")
            }
        }
    }
    start_listener(&pipeline, &metrics).await;
    let stop = Arc::new(tokio::sync::Notify::new());
    tokio::spawn(wait_for_signal(Arc::clone(&stop)));
    tracing::info!(
        sources = pipeline.sources.len(),
        "partnerwatch running; Ctrl-C or SIGTERM stops it"
    );

    // Sweeps and deliveries on a thread of their own ([`super::on_sweep_thread`]).
    let (sweeps, counts, stopped) = (
        Arc::clone(&pipeline),
        Arc::clone(&metrics),
        Arc::clone(&stop),
    );
    super::on_sweep_thread(move || async move { schedule(&sweeps, &counts, &stopped).await })
        .await?;
    pipeline.store.flush()?;
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Sweeps, queues digests and delivers on schedule until `stop`.
async fn schedule(
    pipeline: &Pipeline,
    metrics: &crate::health::Metrics,
    stop: &tokio::sync::Notify,
) {
    // A channel that hangs delivers on in the background; sweeps keep their schedule.
    let mut schedule = Scheduler::new(pipeline).with_delivery_wait(crate::scheduler::DELIVERY_WAIT);
    for (digest, next) in schedule.next_digests() {
        tracing::info!(digest, next = %next.to_zoned(pipeline.config.timezone.clone()), "digest scheduled");
    }
    // Deliveries left pending by an earlier run (a crash, a stop) go out first, with a
    // digest whose slot passed while the service was down (less than a day ago).
    observe(&schedule.resume().await, metrics, pipeline);
    loop {
        let tick = schedule.tick().await;
        observe(&tick, metrics, pipeline);
        // A channel that asked to wait (Retry-After) is tried again as soon as it may be.
        let wait = tick.wake.duration_since(pipeline.clock.now());
        let wait = Duration::try_from(wait).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.notified() => break,
        }
    }
}

/// Counts a step of the schedule in the metrics and logs its deliveries.
fn observe(tick: &Tick, metrics: &crate::health::Metrics, pipeline: &Pipeline) {
    metrics.storage(tick.storage.clone(), pipeline.clock.now());
    for sweep in &tick.sweeps {
        let events = sweep
            .result
            .as_ref()
            .map(|r| r.events.as_slice())
            .unwrap_or_default();
        metrics.sweep(
            sweep.source,
            sweep.result.is_ok(),
            events,
            pipeline.clock.now(),
        );
    }
    match &tick.delivered {
        Ok(r) if r.sent + r.retrying + r.dead > 0 => {
            metrics.delivered(r.sent, r.dead);
            tracing::info!(
                sent = r.sent,
                retrying = r.retrying,
                dead = r.dead,
                "delivered"
            );
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot read the outbox"),
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

/// Settles the actions a crash left half done, then starts the Telegram listener of
/// `actions.telegram` as a task of its own: whatever happens to it, sweeps and deliveries go
/// on.
async fn start_listener(pipeline: &Arc<Pipeline>, metrics: &Arc<crate::health::Metrics>) {
    if let Some(desk) = &pipeline.desk {
        let announce = |events: &[crate::model::Event]| pipeline.announce(events);
        match desk.settle(&announce, pipeline.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(actions = n, "settled actions a stop had interrupted"),
            Err(e) => tracing::warn!(error = %e, "cannot settle interrupted actions"),
        }
    }
    let Some(chat) = pipeline
        .config
        .actions
        .as_ref()
        .and_then(|a| a.telegram.as_ref().map(|t| (a.confirm, t)))
    else {
        return;
    };
    let (confirm, telegram) = chat;
    let Some(channel) = pipeline
        .channels
        .get(&telegram.channel)
        .and_then(|c| c.telegram())
    else {
        return;
    };
    let settings = crate::actions::telegram::Settings {
        allow: telegram.allow.clone(),
        confirm,
        chat: match channel.chat() {
            teloxide::types::Recipient::Id(id) => Some(id.0),
            teloxide::types::Recipient::ChannelUsername(_) => None,
        },
        poll_timeout: Duration::from_secs(25),
    };
    tracing::info!(channel = %telegram.channel, allowed = telegram.allow.len(), "listening for button presses on Telegram");
    tokio::spawn(crate::actions::telegram::listen(
        Arc::clone(pipeline),
        channel.bot().clone(),
        settings,
        Arc::clone(metrics),
    ));
}
