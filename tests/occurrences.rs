//! Guarantee 10 (DESIGN §6): the same change happening again is announced again — a value that
//! goes back and forth, a record that leaves and returns — and each occurrence only once, with
//! the process restarted between every step (every step is its own `partnerwatch poll`).

mod common;

use partnerwatch::model::EventKind;
use partnerwatch::store::Store;
use serde_json::Value;
use std::path::Path;

fn poll(config: &Path) -> String {
    let (ok, out, err) = common::partnerwatch(config, &["poll"]);
    assert!(ok, "{out}{err}");
    out
}

/// The events of `kind` about `id` in the state folder's log.
fn count(state: &Path, kind: EventKind, id: &str) -> usize {
    let store = Store::open(state).unwrap();
    store
        .events()
        .unwrap()
        .iter()
        .filter(|e| e.kind == kind && e.entity_id == id)
        .count()
}

#[test]
fn a_value_that_goes_back_and_forth_and_a_record_that_leaves_and_returns_are_announced_each_time() {
    // The commands run on the system clock, so the simulated Partner Center lives at it too.
    let (_rt, sim) = common::sim_runtime_now(30, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let state = dir.path().join("state");
    poll(&config);

    let (flipper, leaver) = {
        let s = sim.state();
        let r = s.referrals();
        (r[0].clone(), r[1].clone())
    };
    let id = |r: &Value| r["id"].as_str().unwrap().to_string();
    let (flip_id, leave_id) = (id(&flipper), id(&leaver));
    let mut raised = flipper.clone();
    raised["details"]["dealValue"] = serde_json::json!(2_000_000);
    // Exactly the same two versions, byte for byte, one after the other.
    let put = |record: &Value| {
        let mut s = sim.state();
        s.remove_referral(record["id"].as_str().unwrap());
        s.insert_raw(record.clone());
    };
    for version in [&raised, &flipper, &raised, &flipper] {
        put(version);
        poll(&config);
    }
    assert_eq!(count(&state, EventKind::ReferralChanged, &flip_id), 4);

    for _ in 0..2 {
        sim.state().remove_referral(&leave_id);
        poll(&config);
        put(&leaver);
        poll(&config);
    }
    assert_eq!(count(&state, EventKind::ReferralRemoved, &leave_id), 2);
    assert_eq!(count(&state, EventKind::ReferralNew, &leave_id), 2);

    // Nothing changed since: a further restart and sweep announces nothing.
    let out = poll(&config);
    assert!(out.contains("events: none"), "{out}");
    assert_eq!(count(&state, EventKind::ReferralChanged, &flip_id), 4);
}
