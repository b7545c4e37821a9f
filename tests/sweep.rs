//! The referrals source, the store and the diff against the simulator, in process.

mod common;

use common::PollAll;

use std::collections::BTreeSet;

use partnerwatch::model::EventKind;
use partnerwatch::sim::{Fault, FaultAction};
use serde_json::{json, Value};

#[tokio::test]
async fn source_follows_every_page_of_250_records_in_7_pages() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(250, 40).await;

    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    assert_eq!(report.pages, 7);
    assert_eq!(report.records, 250);
    assert!(report.baseline);
    assert!(
        report.events.iter().all(|e| matches!(
            e.kind,
            EventKind::ReferralExpiring | EventKind::ReferralExpired
        )),
        "a baseline announces nothing but deadlines"
    );
    let stats = sim.state().stats.clone();
    assert_eq!(stats.list_requests, 7, "one call per page, no more");
    let stored = common::stored_ids(&pipeline.store, "referrals");
    let served: BTreeSet<String> = sim
        .state()
        .referrals()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(stored, served);
}

#[tokio::test]
async fn second_sweep_yields_exactly_the_expected_events() {
    let common::Fixture {
        sim, dir, pipeline, ..
    } = common::fixture(60, 25).await;
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    pipeline.deliver().await.unwrap();
    let files_before = common::files(&dir.path().join("inbox")).len();

    let (added, changed, removed) = {
        let mut s = sim.state();
        let ids: Vec<String> = s
            .referrals()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        s.patch_referral(&ids[3], &json!({"details": {"dealValue": 123456}}));
        s.patch_referral(
            &ids[10],
            &json!({"customerProfile": {"name": "Renamed \"Co\" <b>"}}),
        );
        s.remove_referral(&ids[20]);
        (
            s.add_referrals(3),
            vec![ids[3].clone(), ids[10].clone()],
            ids[20].clone(),
        )
    };
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let of = |kind| -> BTreeSet<String> {
        report
            .events
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.entity_id.clone())
            .collect()
    };
    assert_eq!(of(EventKind::ReferralNew), added.into_iter().collect());
    assert_eq!(
        of(EventKind::ReferralChanged),
        changed.iter().cloned().collect()
    );
    assert_eq!(of(EventKind::ReferralRemoved), BTreeSet::from([removed]));
    assert_eq!(report.events.len(), 6);
    assert_eq!(report.unchanged, 60 - 1 - 2);

    let deal = report
        .events
        .iter()
        .find(|e| e.entity_id == changed[0])
        .unwrap();
    let change = deal
        .changes
        .iter()
        .find(|c| c.path == "/details/dealValue")
        .expect("field-level change");
    assert_eq!(change.new, json!(123456));
    assert!(deal.previous.is_some());
    assert!(
        deal.changes.iter().any(|c| c.path == "/eTag"),
        "the touch is visible as a change"
    );

    let commit = report.commit.unwrap();
    assert_eq!(commit.events_written, 6);
    assert_eq!(commit.deliveries_written, 6);
    let delivered = pipeline.deliver().await.unwrap();
    assert_eq!(delivered.sent, 6);
    assert_eq!(
        common::files(&dir.path().join("inbox")).len(),
        files_before + 6
    );

    // Nothing changed since: nothing to say.
    let again = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    assert!(again.events.is_empty());
    assert_eq!(again.unchanged, 62);
}

#[tokio::test]
async fn failed_page_yields_no_events_and_no_removals() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(100, 20).await;
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    pipeline.deliver().await.unwrap();
    let events_before = pipeline.store.events().unwrap().len();

    // Records vanish and arrive, but page 3 keeps failing (more often than the retries).
    let removed: Vec<String> = {
        let mut s = sim.state();
        let ids: Vec<String> = s
            .referrals()
            .iter()
            .take(5)
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect();
        for id in &ids {
            s.remove_referral(id);
        }
        s.add_referrals(2);
        s.add_fault(Fault {
            page: Some(3),
            action: FaultAction::Status {
                status: 500,
                retry_after: None,
            },
            times: 10,
        });
        ids
    };
    let err = pipeline
        .poll(&pipeline.sources[0], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("referrals page 3") && err.contains("500"),
        "{err}"
    );
    assert_eq!(
        pipeline.store.records("referrals").unwrap().len(),
        100,
        "no record removed"
    );
    assert!(
        pipeline.store.events().unwrap().len() == events_before,
        "no event stored"
    );
    assert!(
        pipeline
            .store
            .deliveries(Some(partnerwatch::model::DeliveryStatus::Pending))
            .unwrap()
            .is_empty(),
        "nothing queued"
    );

    // A malformed page fails the sweep too, and says where.
    sim.state().clear_faults();
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::Malformed,
        times: 1,
    });
    let err = pipeline
        .poll(&pipeline.sources[0], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("referrals page 2") && err.contains("not the JSON"),
        "{err}"
    );
    assert_eq!(pipeline.store.events().unwrap().len(), events_before);

    // Once the API behaves, the same changes are found exactly once.
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    let gone: BTreeSet<String> = report
        .events
        .iter()
        .filter(|e| e.kind == EventKind::ReferralRemoved)
        .map(|e| e.entity_id.clone())
        .collect();
    assert_eq!(gone, removed.into_iter().collect());
    assert_eq!(report.count(EventKind::ReferralNew), 2);
}

#[tokio::test]
async fn throttled_page_is_retried_within_the_sweep() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(50, 20).await;
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::Status {
            status: 429,
            retry_after: Some(0),
        },
        times: 1,
    });

    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    assert_eq!(report.records, 50);
    let stats = sim.state().stats.clone();
    assert_eq!(stats.faults_applied, 1);
    assert_eq!(stats.list_requests, 4, "3 pages and one retry");
}

#[tokio::test]
async fn configured_filter_reaches_the_api() {
    let sim = common::sim(80, 30).await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(
        dir.path(),
        &sim,
        "    filter: \"direction eq 'Incoming' and status eq 'New'\"",
    );
    let pipeline = common::pipeline(&path, &common::clock());

    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let expected = sim
        .state()
        .referrals()
        .iter()
        .filter(|r| r["direction"] == "Incoming" && r["status"] == "New")
        .count();
    assert!(
        expected > 0 && expected < 80,
        "the seed gives a mix ({expected})"
    );
    assert_eq!(report.records, expected);
    for item in pipeline.store.records("referrals").unwrap().iter() {
        let record = item.unwrap().1.json().unwrap();
        assert_eq!(record["direction"], "Incoming");
    }
}

#[tokio::test]
async fn wrong_token_fails_the_sweep_with_401() {
    let sim = common::sim(10, 5).await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(sim.token(), "not-the-token");
    std::fs::write(&path, text).unwrap();
    let pipeline = common::pipeline(&path, &common::clock());

    let err = pipeline
        .poll(&pipeline.sources[0], false)
        .await
        .unwrap_err()
        .to_string();

    assert!(err.contains("401"), "{err}");
    assert!(
        !err.contains("not-the-token"),
        "the token is not echoed: {err}"
    );
    assert_eq!(sim.state().stats.unauthorized, 1, "a 401 is not retried");
}

#[tokio::test]
async fn dry_run_commits_nothing() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(30, 10).await;
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    pipeline.deliver().await.unwrap();
    let events_before = pipeline.store.events().unwrap().len();
    sim.state().add_referrals(2);

    let dry = pipeline.poll(&pipeline.sources[0], true).await.unwrap();
    assert_eq!(dry.count(EventKind::ReferralNew), 2);
    assert_eq!(dry.deliveries.len(), 2);
    assert!(dry.commit.is_none());
    assert_eq!(pipeline.store.events().unwrap().len(), events_before);

    let real = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    assert_eq!(
        real.count(EventKind::ReferralNew),
        2,
        "the dry run did not use up the news"
    );
}

#[tokio::test]
async fn when_condition_selects_the_events_a_rule_sends() {
    let common::Fixture {
        sim, dir, clock, ..
    } = common::fixture(5, 10).await;
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: big-deals\n  on: referral.new\n  when: 'has(record.details.dealValue) && record.details.dealValue >= 100000 && record.direction == \"Incoming\"'\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();
    let pipeline = common::pipeline(&dir.path().join("partnerwatch.yaml"), &clock);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    let big = {
        let mut s = sim.state();
        let ids = s.add_referrals(3);
        s.patch_referral(
            &ids[0],
            &json!({"details": {"dealValue": 500}, "direction": "Incoming"}),
        );
        s.patch_referral(
            &ids[1],
            &json!({"details": {"dealValue": 250000}, "direction": "Incoming"}),
        );
        s.patch_referral(&ids[2], &json!({"details": null, "direction": "Incoming"}));
        ids[1].clone()
    };
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    assert_eq!(report.count(EventKind::ReferralNew), 3);
    let bodies: Vec<&str> = report.deliveries.iter().map(|d| d.rule.as_str()).collect();
    assert_eq!(
        report.deliveries.len(),
        1,
        "only the big deal passes `when`: {bodies:?}"
    );
    assert_eq!(
        report.deliveries[0]
            .message
            .body
            .raw()
            .lines()
            .next()
            .unwrap(),
        format!("referral.new {big}")
    );
}

#[tokio::test]
async fn throttle_sends_once_per_rule_and_record_per_window_even_across_restarts() {
    let common::Fixture {
        sim, dir, clock, ..
    } = common::fixture(5, 10).await;
    std::fs::write(dir.path().join("rules/all.yaml"), "- name: changes\n  on: referral.changed\n  throttle: 24h\n  channels: [inbox]\n  template: any\n").unwrap();
    let path = dir.path().join("partnerwatch.yaml");
    let id = sim.state().referrals()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    common::pipeline(&path, &clock).poll_all().await;
    let mut sent = Vec::new();
    for (step, hours) in [(1, 1), (2, 1), (3, 22), (4, 2)] {
        sim.state()
            .patch_referral(&id, &json!({"details": {"dealValue": step * 1000}}));
        clock.advance(jiff::SignedDuration::from_hours(hours));
        // A new pipeline every time: the throttle survives restarts.
        let p = common::pipeline(&path, &clock);
        let report = p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(report.count(EventKind::ReferralChanged), 1);
        sent.push(report.deliveries.len());
    }
    assert_eq!(
        sent,
        vec![1, 0, 0, 1],
        "the first message; then 1 h and 23 h after it: throttled; 25 h after it: sent"
    );
}

#[tokio::test]
async fn quiet_hours_hold_messages_until_the_window_ends_in_local_time() {
    let common::Fixture {
        sim, dir, clock, ..
    } = common::fixture(5, 10).await;
    let path = dir.path().join("partnerwatch.yaml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "state_dir: ./state\n",
        "state_dir: ./state\ntimezone: Europe/Berlin\n",
    );
    std::fs::write(&path, text).unwrap();
    std::fs::write(dir.path().join("rules/all.yaml"), "- name: night\n  on: referral.new\n  quiet_hours: \"20:00-07:00\"\n  channels: [inbox]\n  template: any\n").unwrap();
    // 21:30 in Berlin.
    clock.set("2026-11-23T20:30:00Z".parse().unwrap());
    let p = common::pipeline(&path, &clock);
    p.poll(&p.sources[0], false).await.unwrap();
    sim.state().add_referrals(1);
    let report = p.poll(&p.sources[0], false).await.unwrap();
    assert_eq!(report.deliveries.len(), 1);
    assert_eq!(
        report.deliveries[0].next_attempt_at,
        "2026-11-24T06:00:00Z".parse().unwrap(),
        "07:00 in Berlin"
    );
    assert_eq!(p.deliver().await.unwrap().sent, 0, "held during the night");
    clock.set("2026-11-24T05:59:00Z".parse().unwrap());
    assert_eq!(p.deliver().await.unwrap().sent, 0);
    clock.set("2026-11-24T06:00:00Z".parse().unwrap());
    assert_eq!(
        p.deliver().await.unwrap().sent,
        1,
        "released at the end of the window, not dropped"
    );
    assert_eq!(common::files(&dir.path().join("inbox")).len(), 1);
}

#[tokio::test]
async fn grouped_rule_sends_the_events_of_its_window_as_one_message() {
    let common::Fixture {
        sim, dir, clock, ..
    } = common::fixture(5, 10).await;
    std::fs::write(dir.path().join("rules/all.yaml"), "- name: digestish\n  on: referral.new\n  group: 10m\n  channels: [inbox]\n  template: any\n").unwrap();
    let p = common::pipeline(&dir.path().join("partnerwatch.yaml"), &clock);
    p.poll_all().await;
    let mut added = sim.state().add_referrals(2);
    p.poll_all().await;
    clock.advance(jiff::SignedDuration::from_mins(4));
    added.extend(sim.state().add_referrals(1));
    p.poll_all().await;
    assert_eq!(
        p.deliver().await.unwrap().sent,
        0,
        "the group waits for its window"
    );
    // What the three are worth, per currency, from the simulator's records.
    let mut worth: std::collections::BTreeMap<String, f64> = Default::default();
    for r in sim.state().referrals() {
        if added.contains(&r["id"].as_str().unwrap().to_string()) {
            if let Some(v) = r["details"]["dealValue"].as_f64() {
                let c = r["details"]["currency"].as_str().unwrap_or_default();
                *worth.entry(c.to_string()).or_default() += v;
            }
        }
    }

    clock.advance(jiff::SignedDuration::from_mins(6));
    let report = p.deliver().await.unwrap();
    assert_eq!(report.sent, 3, "all three deliveries went out");
    let inbox = dir.path().join("inbox");
    let files = common::files(&inbox);
    assert_eq!(files.len(), 1, "as one message: {files:?}");
    let text = std::fs::read_to_string(inbox.join(&files[0])).unwrap();
    let title = text.lines().next().unwrap();
    assert!(
        title.starts_with("3 new referrals — "),
        "says what it groups: {title}"
    );
    for (currency, sum) in &worth {
        let shown = partnerwatch::notify::text::money(&serde_json::json!(sum), currency);
        assert!(title.contains(&shown), "{shown} in {title}");
    }
    assert_eq!(text.matches("referral.new ").count(), 3, "{text}");
    assert_eq!(p.deliver().await.unwrap().sent, 0);
}

#[tokio::test]
async fn failing_source_raises_system_events_once_and_recovery_once() {
    let common::Fixture {
        sim, dir, clock, ..
    } = common::fixture(10, 5).await;
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: admin\n  on: system.*\n  channels: [inbox]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("templates/system_source_failing.text.hbs"),
        "failing {{data.source}} {{data.failures}}\n{{data.error}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("templates/system_source_recovered.text.hbs"),
        "recovered {{data.source}} after {{data.failures}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("templates/system_delivery_dead.text.hbs"),
        "dead {{data.channel}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("templates/system_auth_failed.text.hbs"),
        "auth\n",
    )
    .unwrap();
    let p = common::pipeline(&dir.path().join("partnerwatch.yaml"), &clock);
    p.poll_all().await;
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::Status {
            status: 503,
            retry_after: None,
        },
        times: 1000,
    });
    let mut kinds = Vec::new();
    for _ in 0..5 {
        clock.advance(jiff::SignedDuration::from_mins(5));
        assert!(p.poll(&p.sources[0], false).await.is_err());
        p.deliver().await.unwrap();
        kinds.push(common::files(&dir.path().join("inbox")).len());
    }
    assert_eq!(
        kinds,
        vec![0, 0, 1, 1, 1],
        "raised once, at the third failure in a row"
    );
    sim.state().clear_faults();
    p.poll(&p.sources[0], false).await.unwrap();
    p.poll(&p.sources[0], false).await.unwrap();
    p.deliver().await.unwrap();
    let inbox = dir.path().join("inbox");
    let files = common::files(&inbox);
    assert_eq!(files.len(), 2, "{files:?}");
    let failing = std::fs::read_to_string(inbox.join(&files[0])).unwrap();
    assert!(
        failing.starts_with("failing referrals 3\nreferrals page 2: the server answered 503"),
        "{failing}"
    );
    assert_eq!(
        std::fs::read_to_string(inbox.join(&files[1])).unwrap(),
        "recovered referrals after 5\n"
    );
}

#[tokio::test]
async fn a_failed_baseline_leaves_none_of_its_streamed_records_behind() {
    let common::Fixture {
        sim,
        dir: _dir,
        mut pipeline,
        ..
    } = common::fixture(100, 20).await;
    // A baseline spools its records and writes them, batch by batch, before its commit: a
    // crash in between leaves records without a baseline, as this one does.
    pipeline.baseline_batch_bytes = 1;
    let mut batch = partnerwatch::store::RecordBatch::default();
    batch.add("left-by-a-crash", 1, br#"{"id":"left-by-a-crash"}"#);
    pipeline.store.write_records("referrals", batch).unwrap();
    // And so does one between writing the baseline's index (before its commit) and the commit.
    let index =
        partnerwatch::store::Index::default().rewrite(&[("left-by-a-crash".into(), 1, 24)], &[]);
    pipeline.store.write_index("referrals", &index).unwrap();
    assert!(pipeline
        .store
        .index("referrals")
        .unwrap()
        .holds("left-by-a-crash"));
    sim.state().add_fault(Fault {
        page: Some(3),
        action: FaultAction::Status {
            status: 500,
            retry_after: None,
        },
        times: 10,
    });
    assert!(pipeline.poll(&pipeline.sources[0], false).await.is_err());
    assert_eq!(pipeline.store.records("referrals").unwrap().len(), 0);
    assert!(pipeline.store.baseline_at("referrals").unwrap().is_none());

    // The next baseline holds exactly what the API has, and announces nothing.
    sim.state().clear_faults();
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    assert!(report.baseline);
    let records = pipeline.store.records("referrals").unwrap();
    assert_eq!(records.len(), 100);
    assert!(records.get("left-by-a-crash").unwrap().is_none());
    let index = pipeline.store.index("referrals").unwrap();
    assert!(!index.holds("left-by-a-crash"));
    assert_eq!(index.len(), 100);
    assert_eq!(report.count(EventKind::ReferralNew), 0);
    // Written in batches of one, every record reads back as it came.
    for r in sim.state().referrals() {
        let stored = records.get(r["id"].as_str().unwrap()).unwrap().unwrap();
        assert_eq!(&stored.json().unwrap(), r);
    }
}

#[tokio::test]
async fn an_empty_page_in_the_middle_of_the_chain_is_a_broken_chain_not_removals() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(100, 20).await;
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    sim.state().add_fault(Fault {
        page: Some(2),
        action: FaultAction::EmptyPage,
        times: 1,
    });
    let err = pipeline
        .poll(&pipeline.sources[0], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("page 2") && err.contains("empty page"),
        "{err}"
    );
    assert_eq!(pipeline.store.records("referrals").unwrap().len(), 100);
    let removed = pipeline
        .store
        .events()
        .unwrap()
        .iter()
        .filter(|e| e.kind == EventKind::ReferralRemoved)
        .count();
    assert_eq!(removed, 0);
}

#[tokio::test]
async fn a_sweep_that_would_remove_most_of_a_dataset_is_refused_until_accepted() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(100, 20).await;
    let source = &pipeline.sources[0];
    pipeline.poll(source, false).await.unwrap();
    let baseline_events = pipeline.store.events().unwrap().len();
    // The API suddenly answers 40 of its 100 referrals (a filter gone wrong, a bad answer).
    let gone: Vec<Value> = {
        let mut s = sim.state();
        let gone: Vec<Value> = s.referrals()[..60].to_vec();
        for r in &gone {
            s.remove_referral(r["id"].as_str().unwrap());
        }
        gone
    };
    let err = pipeline.poll(source, false).await.unwrap_err().to_string();
    assert!(
        err.contains("would remove 60 of 100") && err.contains("--accept-removals"),
        "{err}"
    );
    let events = pipeline.store.events().unwrap()[baseline_events..].to_vec();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::SystemSourceFailing],
        "refused at once, said once, nothing removed"
    );
    assert!(events[0]
        .data
        .to_string()
        .contains("would remove 60 of 100"));
    assert_eq!(pipeline.store.records("referrals").unwrap().len(), 100);
    // Refused again: no second `system.source_failing` for the same run of failures.
    assert!(pipeline.poll(source, false).await.is_err());
    assert_eq!(pipeline.store.events().unwrap().len(), baseline_events + 1);

    // They come back: the source recovers and nothing was ever announced as removed.
    {
        let mut s = sim.state();
        for r in &gone {
            s.insert_raw(r.clone());
        }
    }
    let report = pipeline.poll(source, false).await.unwrap();
    assert_eq!(report.count(EventKind::ReferralRemoved), 0);
    assert_eq!(
        pipeline.store.events().unwrap().last().unwrap().kind,
        EventKind::SystemSourceRecovered
    );

    // Really gone, and a person says so: the removals are taken once.
    {
        let mut s = sim.state();
        for r in &gone {
            s.remove_referral(r["id"].as_str().unwrap());
        }
    }
    assert!(pipeline.poll(source, false).await.is_err());
    let accept = partnerwatch::pipeline::PollOptions {
        accept_removals: true,
        ..Default::default()
    };
    let report = pipeline.poll_with(source, accept).await.unwrap();
    assert_eq!(report.count(EventKind::ReferralRemoved), 60);
    assert_eq!(pipeline.store.records("referrals").unwrap().len(), 40);
}

#[tokio::test]
async fn a_page_nested_forty_thousand_deep_fails_its_sweep_with_a_message_not_a_crash() {
    let depth = 40_000;
    let body = format!(
        "{{\"value\":[{{\"id\":\"x\",\"d\":{}1{}}}]}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let (err, stored) = baseline_failing_on(body.into_bytes()).await;
    assert!(
        err.contains("referrals page 1") && err.contains("40003 levels deep"),
        "{err}"
    );
    assert_eq!(stored, 0);
}

/// A baseline against a server that answers every call with `body`, which must fail: its
/// error, and how many records the store then holds.
async fn baseline_failing_on(body: Vec<u8>) -> (String, usize) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move || {
        let body = body.clone();
        async move { ([("content-type", "application/json")], body) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sim = common::sim(0, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(&sim.referrals_base_url(), &format!("http://{addr}/v1.0"));
    std::fs::write(&path, text).unwrap();
    let p = common::pipeline(&path, &common::clock());
    let err = p.poll(&p.sources[0], false).await.unwrap_err().to_string();
    (err, p.store.records("referrals").unwrap().len())
}

/// A page is no longer checked to be UTF-8 as a whole before its records are read (an
/// unchanged record is the bytes the store holds); a record that is not UTF-8 still fails
/// the sweep, on the scan's path and on the parser's.
#[tokio::test]
async fn a_record_that_is_not_utf8_fails_its_sweep_and_stores_nothing() {
    for between in [",", ",7,"] {
        let mut body = br#"{"value":[{"id":"a","n":"ok"}"#.to_vec();
        // A number among the records is irregular for the scan: that page goes to the parser.
        body.extend_from_slice(between.as_bytes());
        body.extend_from_slice(br#"{"id":"b","n":"caf"#);
        body.push(0xe9); // Latin-1 'é', not UTF-8
        body.extend_from_slice(br#""}]}"#);
        let (err, stored) = baseline_failing_on(body).await;
        assert!(
            err.contains("referrals page 1") && err.contains("utf-8"),
            "{between:?}: {err}"
        );
        assert_eq!(stored, 0);
    }
}

#[tokio::test]
async fn one_record_nested_too_deep_keeps_its_stored_version_and_the_rest_of_the_sweep_counts() {
    let common::Fixture {
        sim,
        dir: _dir,
        pipeline,
        ..
    } = common::fixture(30, 10).await;
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    let (deep_id, other_id) = {
        let mut s = sim.state();
        let (deep, other) = (s.referrals()[3].clone(), s.referrals()[4].clone());
        let mut nested = json!("bottom");
        for _ in 0..200 {
            nested = json!([nested]);
        }
        let mut deep_now = deep.clone();
        deep_now["details"]["notes"] = nested;
        let id = |r: &Value| r["id"].as_str().unwrap().to_string();
        s.remove_referral(&id(&deep));
        s.insert_raw(deep_now);
        s.patch_referral(&id(&other), &json!({"details": {"dealValue": 424242}}));
        (id(&deep), id(&other))
    };
    let stored = pipeline
        .store
        .records("referrals")
        .unwrap()
        .get(&deep_id)
        .unwrap()
        .unwrap();
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    assert_eq!(report.records, 30);
    assert_eq!(report.count(EventKind::ReferralRemoved), 0);
    assert!(
        report.events.iter().all(|e| e.entity_id != deep_id),
        "{:?}",
        report.events
    );
    assert!(report
        .events
        .iter()
        .any(|e| e.entity_id == other_id && e.kind == EventKind::ReferralChanged));
    let kept = pipeline
        .store
        .records("referrals")
        .unwrap()
        .get(&deep_id)
        .unwrap()
        .unwrap();
    assert_eq!(kept.hash, stored.hash, "the stored version is kept");
}

/// A `Retry-After` longer than a sweep waits fails that sweep at once, says so, and the
/// schedule does not call the API again before it is over.
#[tokio::test]
async fn a_long_retry_after_is_respected_by_the_schedule_not_waited_out_in_the_sweep() {
    use partnerwatch::clock::Clock;
    let f = common::fixture(5, 5).await;
    f.sim.state().add_fault(partnerwatch::sim::Fault {
        page: Some(1),
        action: partnerwatch::sim::FaultAction::Status {
            status: 429,
            retry_after: Some(600),
        },
        times: 100,
    });
    let mut schedule = partnerwatch::scheduler::Scheduler::new(&f.pipeline);
    let tick = schedule.tick().await;
    let err = tick.sweeps[0].result.as_ref().unwrap_err().to_string();
    assert!(err.contains("429") && err.contains("wait 600 s"), "{err}");
    let next = schedule.next_sweep("referrals").unwrap();
    assert!(
        next >= f.clock.now() + jiff::SignedDuration::from_secs(600),
        "next sweep at {next}, now {}",
        f.clock.now()
    );
    let asked = f.sim.state().stats.list_requests;
    f.clock.advance(jiff::SignedDuration::from_secs(300));
    let tick = schedule.tick().await;
    assert!(
        tick.sweeps.is_empty(),
        "not swept while the API asked to wait"
    );
    assert_eq!(f.sim.state().stats.list_requests, asked);
}

/// A page chain that repeats one referral and misses another (rows shifted between pages)
/// holds as many rows as `@odata.count` promised, but not as many distinct ones: the sweep
/// fails instead of announcing the missed one as removed.
#[tokio::test]
async fn a_repeated_record_does_not_hide_a_missing_one() {
    let f = common::fixture(6, 2).await;
    f.pipeline
        .poll(&f.pipeline.sources[0], false)
        .await
        .unwrap();
    {
        let mut s = f.sim.state();
        let first = s.referrals()[0].clone();
        let gone = s.referrals()[5]["id"].as_str().unwrap().to_string();
        s.remove_referral(&gone);
        s.insert_raw(first);
    }
    let err = f
        .pipeline
        .poll(&f.pipeline.sources[0], false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("promised 6") && err.contains("5 distinct") && err.contains("came twice"),
        "{err}"
    );
    assert_eq!(
        common::stored_ids(&f.pipeline.store, "referrals").len(),
        6,
        "nothing removed"
    );
}

/// `@odata.count` may count the whole list or the page's rows (the docs' sample allows
/// both): either way every referral is read and the same change is announced.
#[tokio::test]
async fn odata_count_per_page_or_total_reads_the_whole_list() {
    use partnerwatch::sim::{ODataCount, Readings, SimConfig, Simulator};
    for count in [ODataCount::Total, ODataCount::PerPage] {
        let sim = Simulator::start(
            SimConfig {
                referrals: 23,
                page_size: 5,
                seed: 42,
                readings: Readings {
                    odata_count: count,
                    ..Readings::default()
                },
                ..SimConfig::default()
            },
            0,
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = common::write_config(dir.path(), &sim, "");
        let p = common::pipeline(&path, &common::clock());
        let report = p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!((report.pages, report.records), (5, 23), "{count:?}");
        let id = sim.state().referrals()[7]["id"]
            .as_str()
            .unwrap()
            .to_string();
        sim.state().remove_referral(&id);
        let report = p.poll(&p.sources[0], false).await.unwrap();
        assert_eq!(
            report.count(partnerwatch::model::EventKind::ReferralRemoved),
            1,
            "{count:?}"
        );
    }
}

/// A changed referral no rule sends is detected, compared and logged in full without either
/// version being parsed: both stay the text they arrived as (a steady sweep of 100,000 with
/// 1 % changed would otherwise build 2,000 JSON trees nobody reads).
#[tokio::test]
async fn a_change_no_rule_sends_is_logged_whole_without_being_parsed() {
    let sim = common::sim(40, 20).await;
    let dir = tempfile::tempdir().unwrap();
    let path = common::write_config(dir.path(), &sim, "");
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: new-only\n  on: referral.new\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();
    let clock = common::clock();
    let pipeline = common::pipeline(&path, &clock);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    let (id, before) = {
        let mut s = sim.state();
        let r = s.referrals()[5].clone();
        let id = r["id"].as_str().unwrap().to_string();
        s.patch_referral(&id, &json!({"details": {"dealValue": 777}}));
        (id, r["details"]["dealValue"].clone())
    };
    let report = pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let changed: Vec<_> = report
        .events
        .iter()
        .filter(|e| e.kind == EventKind::ReferralChanged)
        .collect();
    assert_eq!(changed.len(), 1);
    let event = changed[0];
    assert_eq!(event.entity_id, id);
    assert!(!event.record.is_parsed(), "the new version stays text");
    let previous = event.previous.as_ref().unwrap();
    assert!(!previous.is_parsed(), "the stored version stays text");
    assert!(event
        .changes
        .iter()
        .any(|c| c.path == "/details/dealValue" && c.old == before && c.new == json!(777)));

    let logged = pipeline.store.event(&event.id).unwrap().unwrap();
    assert_eq!(logged.record["details"]["dealValue"], 777);
    assert_eq!(logged.previous.unwrap()["details"]["dealValue"], before);
    assert_eq!(logged.changes, event.changes);
}
