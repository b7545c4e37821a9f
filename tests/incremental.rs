//! `incremental: true` on the Referrals source: between full sweeps a cycle asks only for
//! what was updated since the last one (the simulator serves `updatedDateTime gt …` and
//! refuses what it cannot read), removals come only from full sweeps (guarantee 1), and a
//! server that refuses the filter gets full sweeps from then on.

mod common;

use jiff::SignedDuration;
use partnerwatch::model::EventKind;
use partnerwatch::pipeline::Pipeline;
use partnerwatch::sim::{Readings, SimConfig, Simulator, UpdatedFilter};

const REFERRALS: usize = 300;
const PAGE: usize = 20;

async fn start(
    readings: Readings,
) -> (
    Simulator,
    tempfile::TempDir,
    partnerwatch::clock::ManualClock,
    Pipeline,
) {
    let sim = Simulator::start(
        SimConfig {
            referrals: REFERRALS,
            page_size: PAGE,
            seed: 42,
            readings,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        &sim,
        "    incremental: true\n    full_every: 1h\n",
    );
    let clock = common::clock();
    let pipeline = common::pipeline(&path, &clock);
    (sim, dir, clock, pipeline)
}

/// Moves both clocks on by `minutes`; the simulator's referrals change only when told.
fn later(sim: &Simulator, clock: &partnerwatch::clock::ManualClock, minutes: i64) {
    use partnerwatch::clock::Clock;
    clock.advance(SignedDuration::from_mins(minutes));
    sim.state().set_now(clock.now());
}

fn list_requests(sim: &Simulator) -> u64 {
    sim.state().stats.list_requests
}

#[tokio::test]
async fn between_full_sweeps_only_updates_are_read_and_removals_wait_for_the_full_sweep() {
    let (sim, _dir, clock, pipeline) = start(Readings::default()).await;
    let source = &pipeline.sources[0];
    let baseline = pipeline.poll(source, false).await.unwrap();
    assert!(baseline.baseline && !baseline.partial);
    assert_eq!(baseline.pages as usize, REFERRALS / PAGE);

    // Five minutes on: two referrals change, one arrives, one leaves the list.
    later(&sim, &clock, 5);
    let (changed, gone) = {
        let s = sim.state();
        let ids: Vec<String> = s.referrals()[100..103]
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        (ids[..2].to_vec(), ids[2].clone())
    };
    {
        let mut s = sim.state();
        for id in &changed {
            assert!(s.patch_referral(id, &serde_json::json!({"details": {"dealValue": 123456}})));
        }
        s.add_referrals(1);
        assert!(s.remove_referral(&gone));
    }
    let before = list_requests(&sim);
    let report = pipeline.poll(source, false).await.unwrap();
    assert!(
        report.partial,
        "a sweep between full ones asks only for updates"
    );
    assert_eq!(
        list_requests(&sim) - before,
        1,
        "one page holds what changed"
    );
    assert!(
        report.records < REFERRALS / 10,
        "only updated referrals are read ({} were)",
        report.records
    );
    assert_eq!(report.count(EventKind::ReferralChanged), 2);
    assert_eq!(report.count(EventKind::ReferralNew), 1);
    assert_eq!(
        report.count(EventKind::ReferralRemoved),
        0,
        "what an incremental sweep does not list is not removed"
    );
    assert_eq!(
        pipeline.store.records("referrals").unwrap().len(),
        REFERRALS + 1
    );

    // Nothing changed since: the next cycle reads the overlap again and announces nothing.
    later(&sim, &clock, 5);
    let report = pipeline.poll(source, false).await.unwrap();
    assert!(
        report.partial && report.events.is_empty(),
        "{:?}",
        report.events
    );

    // An hour after the last full sweep the next one is full, and finds the removal.
    later(&sim, &clock, 55);
    let before = list_requests(&sim);
    let report = pipeline.poll(source, false).await.unwrap();
    assert!(!report.partial);
    assert_eq!(
        list_requests(&sim) - before,
        REFERRALS.div_ceil(PAGE) as u64
    );
    let removed: Vec<&str> = report
        .events
        .iter()
        .filter(|e| e.kind == EventKind::ReferralRemoved)
        .map(|e| e.entity_id.as_str())
        .collect();
    assert_eq!(removed, [gone.as_str()]);
    assert!(report.count(EventKind::ReferralChanged) == 0);
}

#[tokio::test]
async fn a_server_that_refuses_the_filter_gets_full_sweeps_from_then_on() {
    let (sim, _dir, clock, pipeline) = start(Readings {
        updated_filter: UpdatedFilter::Refused,
        ..Readings::default()
    })
    .await;
    let source = &pipeline.sources[0];
    let pages = REFERRALS.div_ceil(PAGE) as u64;
    pipeline.poll(source, false).await.unwrap();

    later(&sim, &clock, 5);
    let id = sim.state().referrals()[7]["id"]
        .as_str()
        .unwrap()
        .to_string();
    sim.state()
        .patch_referral(&id, &serde_json::json!({"details": {"dealValue": 99}}));
    let before = list_requests(&sim);
    let report = pipeline.poll(source, false).await.unwrap();
    assert!(
        !report.partial,
        "the refused filter falls back to a full sweep"
    );
    assert_eq!(report.count(EventKind::ReferralChanged), 1);
    assert_eq!(
        list_requests(&sim) - before,
        1 + pages,
        "one refused request, then every page"
    );

    // It is not asked again.
    later(&sim, &clock, 5);
    let before = list_requests(&sim);
    let report = pipeline.poll(source, false).await.unwrap();
    assert!(!report.partial && report.events.is_empty());
    assert_eq!(list_requests(&sim) - before, pages);
}
