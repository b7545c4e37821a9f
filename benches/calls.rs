//! `cargo bench --bench calls`: Referrals API calls in one simulated day of 5-minute cycles
//! over 10,000 referrals, with full sweeps only and with `incremental: true` (a full sweep
//! every 24 h, the default), each against its own simulator living the same day from the
//! same seed. Both modes must announce as many events of each kind (the simulators' referral
//! ids are random, so the events' ids differ). The last line is
//! `calls referrals=… cycles=… full_calls=… incremental_calls=… ratio=… events=…`.
//! `PW_BENCH_RECORDS` sets another size.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::SignedDuration;
use partnerwatch::clock::ManualClock;
use partnerwatch::config::Config;
use partnerwatch::pipeline::{Assets, Pipeline};
use partnerwatch::sim::{SimConfig, Simulator};

const CYCLE_MINUTES: i64 = 5;
const CYCLES: usize = 24 * 60 / CYCLE_MINUTES as usize;

fn main() {
    let referrals = std::env::var("PW_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (full_calls, full_events) = rt.block_on(day(referrals, false));
    let (incremental_calls, incremental_events) = rt.block_on(day(referrals, true));
    assert_eq!(
        full_events, incremental_events,
        "both modes announce as many events of each kind"
    );
    println!(
        "calls referrals={referrals} cycles={CYCLES} full_calls={full_calls} incremental_calls={incremental_calls} ratio={:.1} events={}",
        full_calls as f64 / incremental_calls.max(1) as f64,
        full_events.values().sum::<usize>()
    );
}

/// One day of cycles: (list calls made, events announced of each kind).
async fn day(referrals: usize, incremental: bool) -> (u64, BTreeMap<String, usize>) {
    let sim = Simulator::start(
        SimConfig {
            referrals,
            // A few arrive a day (the simulator lets them arrive on its steps).
            arrivals_per_day: 40.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for sub in ["rules", "templates"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let yaml = format!(
        "state_dir: ./state\nlisten: \"off\"\nauth:\n  static_token: {}\nsources:\n  referrals:\n    base_url: {}\n    incremental: {incremental}\nchannels: {{}}\n",
        sim.token(),
        sim.referrals_base_url()
    );
    let path = dir.path().join("partnerwatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = Config::load(&path).unwrap();
    let assets = Assets::from_config(&config).unwrap();
    let clock = ManualClock::new(sim.state().now);
    let pipeline = Pipeline::build(config, assets, Arc::new(clock.clone())).unwrap();
    let source = &pipeline.sources[0];
    pipeline.poll(source, false).await.unwrap();
    let start = sim.state().stats.list_requests;
    let mut events = BTreeMap::new();
    for _ in 0..CYCLES {
        let now = clock.advance(SignedDuration::from_mins(CYCLE_MINUTES));
        // The simulator lives an hour at a time (its odds are per hour): referrals arrive and
        // change on the hour, and the cycles in between find what is left to find.
        if now.as_second() % 3600 == 0 {
            sim.state().advance_to(now);
        } else {
            sim.state().set_now(now);
        }
        let report = pipeline.poll(source, false).await.unwrap();
        for e in report.events {
            *events.entry(e.kind.to_string()).or_insert(0) += 1;
        }
    }
    let calls = sim.state().stats.list_requests - start;
    eprintln!(
        "{}: {calls} list calls in {CYCLES} cycles, events {events:?}",
        if incremental { "incremental" } else { "full" },
    );
    (calls, events)
}
