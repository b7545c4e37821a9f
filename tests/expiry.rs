//! The 14-day clock and the lifecycle events, on scripted simulator timelines.

mod common;

use jiff::{SignedDuration, Timestamp};
use partnerwatch::clock::{Clock, ManualClock};
use partnerwatch::model::{Event, EventKind};
use partnerwatch::pipeline::Pipeline;
use partnerwatch::sim::referrals::api_time;
use partnerwatch::sim::Simulator;
use serde_json::json;

/// A pipeline over an empty simulator, with its baseline taken.
async fn setup(dir: &std::path::Path) -> (Simulator, ManualClock, std::path::PathBuf) {
    let sim = common::sim(0, 10).await;
    let path = common::write_config(dir, &sim, "");
    (sim, common::clock(), path)
}

/// One poll in a fresh pipeline (as after a restart), returning the events it stored.
async fn poll_fresh(path: &std::path::Path, clock: &ManualClock) -> Vec<Event> {
    let p: Pipeline = common::pipeline(path, clock);
    let report = p.poll(&p.sources[0], false).await.unwrap();
    p.deliver().await.unwrap();
    let written = report.commit.unwrap().events_written;
    assert_eq!(
        written,
        report.events.len(),
        "every detected event was new to the log"
    );
    report.events
}

/// Adds one incoming New/Pending referral created at `created` with the documented 14-day
/// deadline.
fn add_referral(sim: &Simulator, created: Timestamp) -> String {
    let mut s = sim.state();
    let id = s.add_referrals(1).remove(0);
    s.patch_referral(
        &id,
        &json!({"status": "New", "substatus": "Pending", "direction": "Incoming", "createdDateTime": api_time(created),
                "expirationDateTime": api_time(created + SignedDuration::from_hours(14 * 24))}),
    );
    id
}

fn kinds(events: &[Event]) -> Vec<(EventKind, String)> {
    events
        .iter()
        .map(|e| {
            (
                e.kind,
                e.data
                    .get("threshold")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_threshold_fires_once_then_expired_once_with_a_restart_at_every_step() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    assert!(poll_fresh(&path, &clock).await.is_empty(), "empty baseline");
    let t0 = clock.now();
    let id = add_referral(&sim, t0);

    let mut timeline = Vec::new();
    for _ in 0..(15 * 4) {
        for e in poll_fresh(&path, &clock).await {
            assert_eq!(e.entity_id, id);
            timeline.push((
                clock.now().duration_since(t0).as_hours(),
                e.kind,
                e.data
                    .get("threshold")
                    .and_then(|t| t.as_str())
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        clock.advance(SignedDuration::from_hours(6));
    }
    let expected = vec![
        (0, EventKind::ReferralNew, String::new()),
        (7 * 24, EventKind::ReferralExpiring, "7d".to_string()),
        (11 * 24, EventKind::ReferralExpiring, "3d".to_string()),
        (13 * 24, EventKind::ReferralExpiring, "1d".to_string()),
        (13 * 24 + 18, EventKind::ReferralExpiring, "6h".to_string()),
        (14 * 24, EventKind::ReferralExpired, String::new()),
    ];
    assert_eq!(timeline, expected);
    let inbox = common::files(&dir.path().join("inbox"));
    assert_eq!(
        inbox.len(),
        expected.len(),
        "one message per event, none repeated: {inbox:?}"
    );
}

#[tokio::test]
async fn baseline_announces_referrals_near_their_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    let near = add_referral(&sim, clock.now() - SignedDuration::from_hours(12 * 24));
    let _far = add_referral(&sim, clock.now() - SignedDuration::from_hours(24));

    let events = poll_fresh(&path, &clock).await;

    assert_eq!(
        kinds(&events),
        vec![(EventKind::ReferralExpiring, "3d".to_string())],
        "only the most urgent crossed threshold"
    );
    assert_eq!(events[0].entity_id, near);
    assert_eq!(events[0].data["hours_left"], 48);
}

#[tokio::test]
async fn after_downtime_only_the_most_urgent_threshold_fires() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    poll_fresh(&path, &clock).await;
    add_referral(&sim, clock.now());
    assert_eq!(
        kinds(&poll_fresh(&path, &clock).await),
        vec![(EventKind::ReferralNew, String::new())]
    );

    clock.advance(SignedDuration::from_hours(14 * 24 - 5));
    assert_eq!(
        kinds(&poll_fresh(&path, &clock).await),
        vec![(EventKind::ReferralExpiring, "6h".to_string())]
    );
    clock.advance(SignedDuration::from_hours(1));
    assert!(
        poll_fresh(&path, &clock).await.is_empty(),
        "7d, 3d and 1d were marked done, not sent late"
    );
}

#[tokio::test]
async fn accepting_stops_the_clock_and_lifecycle_moves_are_announced() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    poll_fresh(&path, &clock).await;
    let id = add_referral(&sim, clock.now());
    poll_fresh(&path, &clock).await;

    sim.state()
        .patch_referral(&id, &json!({"status": "Active", "substatus": "Accepted"}));
    clock.advance(SignedDuration::from_hours(24));
    let events = poll_fresh(&path, &clock).await;
    assert_eq!(
        kinds(&events),
        vec![
            (EventKind::ReferralChanged, String::new()),
            (EventKind::ReferralStatusChanged, String::new())
        ]
    );
    assert_eq!(events[1].data["from"], "New/Pending");
    assert_eq!(events[1].data["to"], "Active/Accepted");

    clock.advance(SignedDuration::from_hours(13 * 24));
    assert!(
        poll_fresh(&path, &clock).await.is_empty(),
        "no reminder for an accepted referral"
    );

    sim.state().patch_referral(
        &id,
        &json!({"status": "Closed", "substatus": "Won", "registrationStatus": "ReviewPending"}),
    );
    let events = poll_fresh(&path, &clock).await;
    let got: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        got,
        vec![
            EventKind::ReferralChanged,
            EventKind::ReferralStatusChanged,
            EventKind::ReferralClosed,
            EventKind::ReferralRegistrationChanged
        ]
    );
    assert_eq!(events[2].data["outcome"], "Won");
    assert_eq!(events[3].data["from"], "None");
    assert_eq!(events[3].data["to"], "ReviewPending");
}

#[tokio::test]
async fn expiry_seen_by_the_clock_and_then_by_the_api_is_announced_once() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    poll_fresh(&path, &clock).await;
    let id = add_referral(&sim, clock.now() - SignedDuration::from_hours(14 * 24 - 1));
    poll_fresh(&path, &clock).await;
    clock.advance(SignedDuration::from_hours(2));
    assert_eq!(
        kinds(&poll_fresh(&path, &clock).await),
        vec![(EventKind::ReferralExpired, String::new())]
    );

    sim.state()
        .patch_referral(&id, &json!({"status": "Closed", "substatus": "Expired"}));
    let got: Vec<EventKind> = poll_fresh(&path, &clock)
        .await
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        got,
        vec![
            EventKind::ReferralChanged,
            EventKind::ReferralStatusChanged,
            EventKind::ReferralClosed
        ]
    );
}

/// "Not responded to" is `direction eq 'Incoming' and substatus eq 'Pending'`: an outgoing
/// referral waits for the other party and gets no reminder, though it carries an
/// `expirationDateTime` too. A referral that leaves the list after its deadline was archived
/// as Expired: `referral.expired`, not `referral.removed`.
#[tokio::test]
async fn outgoing_referrals_are_off_the_clock_and_one_that_leaves_after_its_deadline_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    let created = clock.now() - SignedDuration::from_hours(12 * 24);
    let incoming = add_referral(&sim, created);
    let outgoing = add_referral(&sim, created);
    sim.state().patch_referral(
        &outgoing,
        &json!({"direction": "Outgoing", "substatus": "Received"}),
    );
    let events = poll_fresh(&path, &clock).await;
    assert_eq!(
        events
            .iter()
            .map(|e| (e.kind, e.entity_id.as_str()))
            .collect::<Vec<_>>(),
        vec![(EventKind::ReferralExpiring, incoming.as_str())],
        "only the incoming one is reminded"
    );

    // Past the deadline, before anyone saw it expire, the incoming one is archived: gone.
    clock.advance(SignedDuration::from_hours(2 * 24 + 1));
    sim.state().remove_referral(&incoming);
    let events = poll_fresh(&path, &clock).await;
    let kinds: Vec<(EventKind, &str)> = events
        .iter()
        .map(|e| (e.kind, e.entity_id.as_str()))
        .collect();
    assert!(
        kinds.contains(&(EventKind::ReferralExpired, incoming.as_str())),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&(EventKind::ReferralRemoved, incoming.as_str())),
        "{kinds:?}"
    );
    assert!(
        !kinds.contains(&(EventKind::ReferralExpiring, outgoing.as_str())),
        "{kinds:?}"
    );
}

/// The clock does not wait for the API: while the Referrals sweep fails, a reminder that
/// falls due is sent from what the last good sweep stored, once.
#[tokio::test]
async fn reminders_fall_due_from_the_last_good_sweep_while_the_api_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    let id = add_referral(&sim, clock.now() - SignedDuration::from_hours(5 * 24));
    assert!(
        poll_fresh(&path, &clock).await.is_empty(),
        "9 days left: nothing yet"
    );
    sim.state().add_fault(partnerwatch::sim::Fault {
        page: Some(1),
        action: partnerwatch::sim::FaultAction::Status {
            status: 503,
            retry_after: None,
        },
        times: 1000,
    });
    clock.advance(SignedDuration::from_hours(3 * 24));
    let p: Pipeline = common::pipeline(&path, &clock);
    assert!(
        p.poll(&p.sources[0], false).await.is_err(),
        "the API is down"
    );
    let stored = p.store.events_since(Timestamp::UNIX_EPOCH).unwrap();
    let reminders: Vec<&Event> = stored
        .iter()
        .filter(|e| e.kind == EventKind::ReferralExpiring)
        .collect();
    assert_eq!(reminders.len(), 1, "{stored:?}");
    assert_eq!(reminders[0].entity_id, id);
    assert_eq!(reminders[0].data["threshold"], "7d");
    assert!(
        reminders[0].data["last_good_sweep"].is_string(),
        "{}",
        reminders[0].data
    );
    assert!(p
        .store
        .deliveries(None)
        .unwrap()
        .iter()
        .any(|d| d.event_id == reminders[0].id));
    // Still failing an hour later: not again. Back up: not again either.
    clock.advance(SignedDuration::from_hours(1));
    assert!(p.poll(&p.sources[0], false).await.is_err());
    sim.state().clear_faults();
    p.poll(&p.sources[0], false).await.unwrap();
    let again = p.store.events_since(Timestamp::UNIX_EPOCH).unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|e| e.kind == EventKind::ReferralExpiring)
            .count(),
        1
    );
}

/// A status is compared without regard to case, and a status briefly missing is no move: no
/// `status_changed` to "/" and, when it comes back, no second `referral.closed`.
#[tokio::test]
async fn a_status_in_another_casing_or_briefly_missing_is_no_move() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, clock, path) = setup(dir.path()).await;
    let id = add_referral(&sim, clock.now());
    poll_fresh(&path, &clock).await;
    let step = |patch: serde_json::Value| {
        sim.state().patch_referral(&id, &patch);
    };
    step(json!({"status": "Closed", "substatus": "Won"}));
    let kinds = |events: Vec<Event>| events.iter().map(|e| e.kind).collect::<Vec<_>>();
    let won = kinds(poll_fresh(&path, &clock).await);
    assert!(won.contains(&EventKind::ReferralClosed), "{won:?}");
    for patch in [
        json!({"status": "closed", "substatus": "WON"}),
        json!({"status": null}),
        json!({"status": "Closed", "substatus": "Won"}),
    ] {
        step(patch.clone());
        let events = kinds(poll_fresh(&path, &clock).await);
        assert!(
            !events.contains(&EventKind::ReferralStatusChanged)
                && !events.contains(&EventKind::ReferralClosed),
            "{patch}: {events:?}"
        );
    }
}
