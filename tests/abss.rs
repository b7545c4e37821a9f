//! The Partner Insights (ABSS) source and the Copilot detectors against the simulator.

mod common;

use std::collections::BTreeSet;

use partnerwatch::model::EventKind;
use partnerwatch::pipeline::Pipeline;
use partnerwatch::sim::{Fault, FaultAction, SimConfig, Simulator};
use serde_json::json;

async fn sim(tenants: usize) -> Simulator {
    Simulator::start(
        SimConfig {
            referrals: 0,
            tenants,
            seed: 9,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap()
}

/// A configuration reading Partner Insights only, at `version`, with `extra` lines under `abss:`.
fn config(
    dir: &std::path::Path,
    sim: &Simulator,
    version: &str,
    extra: &str,
) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    common::abss_only(&path, sim, version, extra);
    path
}

/// The id of the simulator's `i`th tenant.
fn tenant(sim: &Simulator, i: usize) -> String {
    sim.state().tenants()[i]["tenantId"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn poll(p: &Pipeline, dataset: &str) -> partnerwatch::pipeline::PollReport {
    p.poll(p.source(dataset).unwrap(), false).await.unwrap()
}

/// The simulator serves the documented v1.3 shapes under the v1.3 path and under the v1.5 path
/// partnerwatch calls by default (v1.5's own shapes are not in api-docs/): the path is
/// configurable and an unknown version is refused, nothing more is claimed.
#[tokio::test]
async fn every_dataset_pages_completely_under_either_version_path() {
    let sim = sim(45).await;
    for version in ["v1.3", "v1.5"] {
        let dir = tempfile::tempdir().unwrap();
        let p = common::pipeline(&config(dir.path(), &sim, version, ""), &common::clock());
        let names: Vec<&str> = p.sources.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            vec![
                "copilot",
                "copilot_summary",
                "adoption_summary",
                "mci_performance",
                "mci_summary",
                "partner_referrals"
            ]
        );
        let before = sim.state().stats.abss_requests;
        let copilot = poll(&p, "copilot").await;
        assert_eq!((copilot.pages, copilot.records), (3, 45), "{version}");
        assert_eq!(
            sim.state().stats.abss_requests - before,
            3,
            "one call per page"
        );
        let stored = common::stored_ids(&p.store, "copilot");
        let served: BTreeSet<String> = sim
            .state()
            .tenants()
            .iter()
            .map(|t| t["tenantId"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(stored, served);
        assert_eq!(poll(&p, "copilot_summary").await.records, 1);
        assert_eq!(poll(&p, "adoption_summary").await.records, 1);
        assert_eq!(poll(&p, "mci_summary").await.records, 1);
        let mci = poll(&p, "mci_performance").await;
        assert_eq!(
            (mci.pages, mci.records),
            (2, 23),
            "rows nested in partnerPerformanceDetails"
        );
        let keys = common::stored_ids(&p.store, "mci_performance");
        let row = sim.state().mci_rows()[0].clone();
        let key = format!(
            "{}|{}|{}",
            row["tenantID"].as_str().unwrap(),
            row["engagementName"].as_str().unwrap(),
            row["solutionPlay"].as_str().unwrap()
        );
        assert!(
            keys.contains(&key),
            "keyed by tenant, engagement and play: {keys:?}"
        );
        assert_eq!(poll(&p, "partner_referrals").await.records, 15);
    }
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.4", ""), &common::clock());
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("404") && err.contains("v1.4"), "{err}");
}

#[tokio::test]
async fn health_moves_and_summaries_are_announced() {
    let sim = sim(10).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.5", ""), &common::clock());
    for d in ["copilot", "copilot_summary", "adoption_summary"] {
        assert!(poll(&p, d).await.events.is_empty(), "baseline");
    }
    let tenant = tenant(&sim, 0);
    sim.state()
        .patch_tenant(&tenant, &json!({"adoptionStatus": "Healthy"}));
    poll(&p, "copilot").await;
    poll(&p, "copilot_summary").await;
    poll(&p, "adoption_summary").await;
    sim.state().patch_tenant(
        &tenant,
        &json!({"adoptionStatus": "Failure to Thrive/Adopt"}),
    );
    let report = poll(&p, "copilot").await;
    let kinds: Vec<EventKind> = report.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::CopilotChanged, EventKind::CopilotHealthChanged]
    );
    let health = &report.events[1];
    assert_eq!(health.entity_id, tenant);
    assert_eq!(health.data["from"], "Healthy");
    assert_eq!(health.data["direction"], "worse");

    let copilot_summary = poll(&p, "copilot_summary").await;
    let kinds: Vec<EventKind> = copilot_summary.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::CopilotSummaryChanged],
        "the at-risk count moved"
    );
    let summary = poll(&p, "adoption_summary").await;
    assert_eq!(summary.events.len(), 1);
    assert_eq!(summary.events[0].kind, EventKind::AdoptionSummaryChanged);
    let paths: BTreeSet<&str> = summary.events[0]
        .changes
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert!(
        paths.contains("/Healthy") && paths.contains("/Failure to Thrive~1Adopt"),
        "{paths:?}"
    );
}

#[tokio::test]
async fn thresholds_fire_once_per_crossing_and_do_not_flap() {
    let sim = sim(3).await;
    let dir = tempfile::tempdir().unwrap();
    let extra = "    thresholds:\n      utilizationPercent: [50]\n    hysteresis: 2\n";
    let p = common::pipeline(&config(dir.path(), &sim, "v1.5", extra), &common::clock());
    let tenant = tenant(&sim, 0);
    sim.state()
        .patch_tenant(&tenant, &json!({"utilizationPercent": 40.0}));
    poll(&p, "copilot").await;
    let mut crossings = Vec::new();
    for value in [51.0, 53.0, 49.0, 51.5, 47.0, 49.0, 53.0] {
        sim.state()
            .patch_tenant(&tenant, &json!({ "utilizationPercent": value }));
        for e in poll(&p, "copilot").await.events {
            if e.kind == EventKind::CopilotThresholdCrossed {
                crossings.push((value, e.data["direction"].as_str().unwrap().to_string()));
            }
        }
    }
    assert_eq!(
        crossings,
        vec![
            (53.0, "up".to_string()),
            (47.0, "down".to_string()),
            (53.0, "up".to_string())
        ],
        "a line counts as crossed 2 points past it"
    );
}

#[tokio::test]
async fn failed_page_changes_nothing_and_malformed_page_is_named() {
    let sim = sim(50).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.5", ""), &common::clock());
    poll(&p, "copilot").await;
    let gone = tenant(&sim, 0);
    sim.state().remove_tenant(&gone);
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::Status {
            status: 500,
            retry_after: None,
        },
        times: 10,
    });
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("copilot page 2") && err.contains("500"),
        "{err}"
    );
    assert_eq!(
        p.store.records("copilot").unwrap().len(),
        50,
        "no removal from a failed sweep"
    );
    sim.state().clear_faults();
    sim.state().add_fault(Fault {
        page: Some(3),
        action: FaultAction::Malformed,
        times: 1,
    });
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("copilot page 3"), "{err}");
    assert!(
        err.contains("MS-RequestId "),
        "a malformed page names its request: {err}"
    );
    let report = poll(&p, "copilot").await;
    assert_eq!(
        report
            .events
            .iter()
            .map(|e| (e.kind, e.entity_id.clone()))
            .collect::<Vec<_>>(),
        vec![(EventKind::CopilotRemoved, gone)]
    );
}

#[tokio::test]
async fn mci_milestones_and_partner_referral_statuses_are_announced() {
    let sim = sim(6).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.5", ""), &common::clock());
    for d in ["mci_performance", "mci_summary", "partner_referrals"] {
        assert!(poll(&p, d).await.events.is_empty(), "baseline");
    }
    let claim = sim.state().mci_rows()[0]["claimID"].as_i64().unwrap();
    sim.state().patch_mci_row(
        claim,
        &json!({"milestone": "Claim Approved", "stage": "Completed"}),
    );
    let report = poll(&p, "mci_performance").await;
    let kinds: Vec<EventKind> = report.events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EventKind::MciChanged,
            EventKind::MciMilestoneChanged,
            EventKind::MciStageChanged
        ]
    );
    let row = sim.state().mci_rows()[0].clone();
    let key = format!(
        "{}|{}|{}",
        row["tenantID"].as_str().unwrap(),
        row["engagementName"].as_str().unwrap(),
        row["solutionPlay"].as_str().unwrap()
    );
    assert_eq!(
        report.events[1].entity_id, key,
        "keyed by tenant, engagement and play"
    );

    // The claim goes away (or comes): the same row, one change, no new and no removal.
    sim.state().patch_mci_row(claim, &json!({"claimID": null}));
    let unclaimed = poll(&p, "mci_performance").await;
    let kinds: Vec<EventKind> = unclaimed.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::MciChanged], "{:?}", unclaimed.events);
    assert_eq!(report.events[1].data["to"], "Claim Approved");
    let summary = poll(&p, "mci_summary").await;
    assert_eq!(
        summary.events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EventKind::MciSummaryChanged]
    );

    let referral = sim.state().partner_referrals()[0]["partnerReferralId"]
        .as_str()
        .unwrap()
        .to_string();
    sim.state()
        .patch_partner_referral(&referral, &json!({"referralStatus": {"name": "Accepted"}}));
    let report = poll(&p, "partner_referrals").await;
    let status = report
        .events
        .iter()
        .find(|e| e.kind == EventKind::PartnerReferralStatusChanged)
        .unwrap();
    assert_eq!(
        (status.data["from"].as_str(), status.data["to"].as_str()),
        (Some("Open"), Some("Accepted"))
    );
    assert_eq!(status.entity_id, referral);
}

/// Per tenant `adoptionStatus` is a bare string in the docs (the eight classes appear only as
/// the keys of `/adoptionSummary`): however the API spells a class, a move between two known
/// classes has a direction, and a class nobody documented is shown as given, undirected.
#[tokio::test]
async fn health_direction_holds_however_the_api_spells_the_classes() {
    use partnerwatch::sim::{HealthWording, Readings};
    for wording in [
        HealthWording::Documented,
        HealthWording::Variants,
        HealthWording::WithUnknown,
    ] {
        let sim = Simulator::start(
            SimConfig {
                referrals: 0,
                tenants: 40,
                seed: 11,
                readings: Readings {
                    health: wording,
                    ..Readings::default()
                },
                ..SimConfig::default()
            },
            0,
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
        poll(&p, "copilot").await;
        poll(&p, "adoption_summary").await;
        // The documented spellings: the adoption summary's keys, as the simulator serves them.
        let documented: BTreeSet<String> = p
            .store
            .records("adoption_summary")
            .unwrap()
            .iter()
            .flat_map(|r| {
                let (_, stored) = r.unwrap();
                let json = stored.json().unwrap();
                json.as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(documented.len(), 8, "{documented:?}");
        let now = sim.state().now;
        sim.state()
            .advance_to(now + jiff::SignedDuration::from_hours(24 * 10));
        let moves: Vec<serde_json::Value> = poll(&p, "copilot")
            .await
            .events
            .iter()
            .filter(|e| e.kind == EventKind::CopilotHealthChanged)
            .map(|e| e.data.clone())
            .collect();
        assert!(moves.len() >= 10, "{wording:?}: tenants moved: {moves:?}");
        for m in &moves {
            let known = |k: &str| documented.contains(m[k].as_str().unwrap());
            if known("from") && known("to") {
                assert!(
                    m["direction"] == "better" || m["direction"] == "worse",
                    "{wording:?}: a move between two known classes has a direction: {m}"
                );
            } else {
                assert_eq!(wording, HealthWording::WithUnknown, "{m}");
                assert_eq!(m["direction"], "unknown", "{m}");
                assert!(
                    m.to_string().contains("Not Yet Launched"),
                    "shown as given: {m}"
                );
            }
        }
        if wording == HealthWording::WithUnknown {
            assert!(
                moves.iter().any(|m| m["direction"] == "unknown"),
                "the unknown class was reached: {moves:?}"
            );
        }
    }
}

/// The readings of `/partnerReferrals` and the paged lists that a client must survive: a
/// declined referral is hidden unless `showDeclinedReferrals=true`, `partnerReferralId` is
/// null on some rows (the integer `id` is documented too), and rows come in a new order on
/// every request unless a `sortColumn` is asked for. Each gives no false event and loses no
/// decline.
#[tokio::test]
async fn declines_null_ids_and_shifting_rows_give_no_false_event_and_lose_no_decline() {
    let sim = sim(24).await; // the default readings: hidden declines, shuffled rows
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
    for d in ["copilot", "mci_performance", "partner_referrals"] {
        assert!(poll(&p, d).await.events.is_empty(), "baseline of {d}");
    }
    let listed = sim.state().partner_referrals().len();
    assert!(
        sim.state()
            .partner_referrals()
            .iter()
            .any(|r| r["partnerReferralId"].is_null()),
        "some rows have no partnerReferralId"
    );
    assert_eq!(
        p.store.records("partner_referrals").unwrap().len(),
        listed,
        "a row without partnerReferralId is kept under its id"
    );
    // Unchanged data, asked again and again in whatever order the API likes: nothing to say.
    for _ in 0..4 {
        for d in ["copilot", "mci_performance", "partner_referrals"] {
            let report = poll(&p, d).await;
            assert!(report.events.is_empty(), "{d}: {:?}", report.events);
        }
    }
    // A decline is announced (the declined row is still read).
    let id = sim.state().partner_referrals()[0]["partnerReferralId"]
        .as_str()
        .unwrap()
        .to_string();
    sim.state().patch_partner_referral(
        &id,
        &json!({"acceptance": {"name": "Declined"}, "declineReason": {"name": "Not a fit"}}),
    );
    let report = poll(&p, "partner_referrals").await;
    let kinds: Vec<EventKind> = report.events.iter().map(|e| e.kind).collect();
    assert!(
        kinds.contains(&EventKind::PartnerReferralStatusChanged),
        "the decline is announced: {kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.as_str().ends_with("removed")),
        "{kinds:?}"
    );
}

/// An item that comes without its key may be any stored record: none is taken as removed.
#[tokio::test]
async fn an_item_without_its_key_is_no_removal() {
    let sim = sim(6).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
    poll(&p, "copilot").await;
    let tenant = tenant(&sim, 2);
    sim.state().patch_tenant(
        &tenant,
        &json!({"tenantId": null, "utilizationPercent": 1.5}),
    );
    let report = poll(&p, "copilot").await;
    assert!(
        report
            .events
            .iter()
            .all(|e| e.kind != EventKind::CopilotRemoved),
        "{:?}",
        report.events
    );
    assert_eq!(p.store.records("copilot").unwrap().len(), 6);
}

/// An error names the API, the page, what the server said in either casing (with its
/// validation map) and a request id: the server's, or the MS-RequestId that was sent.
#[tokio::test]
async fn errors_name_the_page_the_reason_and_a_request_id() {
    let sim = sim(30).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::Status {
            status: 400,
            retry_after: None,
        },
        times: 1,
    });
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("copilot page 2"), "{err}");
    assert!(
        err.contains("PageSize: The field PageSize must be between 1 and 1000."),
        "the validation map: {err}"
    );
    let id = err.split("MS-RequestId ").nth(1).unwrap_or_default();
    assert_eq!(
        id.trim_end_matches(')').len(),
        36,
        "the request id sent: {err}"
    );

    // Nothing listens: the host and the cause, not just "error sending request".
    drop(p);
    let closed = common::free_port();
    let text = std::fs::read_to_string(dir.path().join("partnerwatch.yaml"))
        .unwrap()
        .replace(
            &sim.abss_base_url("v1.3"),
            &format!("http://127.0.0.1:{closed}/abss/v1.3/api"),
        );
    std::fs::write(dir.path().join("partnerwatch.yaml"), text).unwrap();
    let p = common::pipeline(&dir.path().join("partnerwatch.yaml"), &common::clock());
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("cannot reach 127.0.0.1"), "{err}");
    assert!(err.to_lowercase().contains("refused"), "the cause: {err}");
}

/// Every Partner Insights endpoint documents 404 "not found or not available": once the API
/// root has answered, a 404 is no data (the partner's MCI rows went away: an empty dataset,
/// not a source failing forever); before any answer it may be a wrong base_url and fails.
#[tokio::test]
async fn a_404_is_no_data_once_the_api_has_answered_and_a_failure_before() {
    let sim = sim(6).await;
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
    poll(&p, "copilot").await;
    assert!(poll(&p, "mci_performance").await.records > 0);
    sim.state().clear_mci_rows();
    let report = p
        .poll(p.source("mci_performance").unwrap(), false)
        .await
        .expect("no data is not a failure");
    assert_eq!(report.records, 0);
    assert!(p.store.records("mci_performance").unwrap().is_empty());
    p.poll(p.source("mci_summary").unwrap(), false)
        .await
        .expect("an empty summary is not a failure");
    drop(p);

    // A fresh start against a root that answers nothing but 404.
    let sim = Simulator::start(
        SimConfig {
            referrals: 0,
            tenants: 0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let p = common::pipeline(&config(dir.path(), &sim, "v1.3", ""), &common::clock());
    let err = p
        .poll(p.source("copilot").unwrap(), false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("404"), "{err}");
}
