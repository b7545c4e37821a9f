//! Channels against real peers on loopback: a capture server for webhooks.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use jiff::SignedDuration;
use partnerwatch::clock::Clock;
use partnerwatch::model::DeliveryStatus;
use serde_json::Value;

/// Statuses to answer with, in order: (status, Retry-After seconds).
type Script = Vec<(u16, Option<u64>)>;

/// A webhook receiver that answers with the scripted statuses, then 200, and keeps every body.
#[derive(Clone, Default)]
struct Capture {
    script: Arc<Mutex<Script>>,
    bodies: Arc<Mutex<Vec<Value>>>,
}

async fn receive(State(c): State<Capture>, body: axum::body::Bytes) -> impl IntoResponse {
    c.bodies
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).expect("webhook body is JSON"));
    let next = {
        let mut s = c.script.lock().unwrap();
        if s.is_empty() {
            None
        } else {
            Some(s.remove(0))
        }
    };
    let mut headers = HeaderMap::new();
    match next {
        None => (StatusCode::OK, headers, "ok"),
        Some((status, retry_after)) => {
            if let Some(secs) = retry_after {
                headers.insert("retry-after", secs.to_string().parse().unwrap());
            }
            (StatusCode::from_u16(status).unwrap(), headers, "busy")
        }
    }
}

async fn capture_server(script: Script) -> (String, Capture) {
    let capture = Capture {
        script: Arc::new(Mutex::new(script)),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/hook/{secret}", post(receive))
        .with_state(capture.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook/s3cret-path-token"), capture)
}

/// A configuration with an inbox and a webhook channel, both on every rule.
fn config_with_hook(
    dir: &std::path::Path,
    sim: &partnerwatch::sim::Simulator,
    hook: &str,
) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "channels:\n",
            &format!("channels:\n  hook: {{ type: webhook, url: \"{hook}\" }}\n"),
        )
        .replace(
            "delivery:\n  backoff: 10ms\n",
            "delivery:\n  backoff: 10ms\n  max_attempts: 3\n",
        );
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        dir.join("rules/all.yaml"),
        "- name: everything\n  on: referral.*\n  channels: [inbox, hook]\n  template: any\n- name: admin\n  on: system.delivery_dead\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();
    path
}

#[tokio::test]
async fn throttled_webhook_is_retried_after_retry_after_and_delivered_once() {
    let sim = common::sim(10, 10).await;
    let (hook, capture) = capture_server(vec![(429, Some(30))]).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let pipeline = common::pipeline(&config_with_hook(dir.path(), &sim, &hook), &clock);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    let id = sim.state().add_referrals(1).remove(0);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let first = pipeline.deliver().await.unwrap();
    assert_eq!(
        (first.sent, first.retrying),
        (1, 1),
        "the inbox is not held back by the webhook"
    );
    let pending = pipeline
        .store
        .deliveries(Some(DeliveryStatus::Pending))
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        pending[0].next_attempt_at,
        clock.now() + SignedDuration::from_secs(30),
        "Retry-After is honoured"
    );
    assert!(!pending[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("s3cret-path-token"));

    clock.advance(SignedDuration::from_secs(10));
    assert_eq!(
        pipeline.deliver().await.unwrap().sent,
        0,
        "not before Retry-After"
    );
    clock.advance(SignedDuration::from_secs(25));
    assert_eq!(pipeline.deliver().await.unwrap().sent, 1);
    assert_eq!(pipeline.deliver().await.unwrap().sent, 0);

    let bodies = capture.bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "one refused attempt and one delivery");
    let body = &bodies[1];
    assert_eq!(body["event"]["kind"], "referral.new");
    assert_eq!(body["event"]["entity_id"], id.as_str());
    assert_eq!(body["rule"], "everything");
    assert!(body["message"]["body"].as_str().unwrap().contains(&id));
}

#[tokio::test]
async fn dead_channel_is_dead_lettered_and_others_still_deliver() {
    let sim = common::sim(10, 10).await;
    let (hook, capture) = capture_server(vec![(500, None); 10]).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let pipeline = common::pipeline(&config_with_hook(dir.path(), &sim, &hook), &clock);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    sim.state().add_referrals(2);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let mut sent = 0;
    for _ in 0..10 {
        let r = pipeline.deliver().await.unwrap();
        sent += r.sent;
        clock.advance(SignedDuration::from_hours(2));
    }
    assert_eq!(
        sent, 4,
        "both inbox messages and both dead-letter notes went out"
    );
    let dead = pipeline
        .store
        .deliveries(Some(DeliveryStatus::Dead))
        .unwrap();
    assert_eq!(dead.len(), 2, "both webhook messages dead-lettered");
    assert!(dead.iter().all(|d| d.channel == "hook" && d.attempts == 3));
    assert!(dead[0].last_error.as_deref().unwrap().contains("500"));
    assert_eq!(
        capture.bodies.lock().unwrap().len(),
        6,
        "3 attempts each, no more"
    );
    let inbox = common::files(&dir.path().join("inbox"));
    let dead_notes = inbox
        .iter()
        .filter(|f| f.ends_with("system_delivery_dead.txt"))
        .count();
    assert_eq!(
        (inbox.len(), dead_notes),
        (4, 2),
        "two arrivals and a note on each dead letter: {inbox:?}"
    );
}

#[tokio::test]
async fn client_error_is_not_retried() {
    let sim = common::sim(5, 10).await;
    let (hook, capture) = capture_server(vec![(404, None)]).await;
    let dir = tempfile::tempdir().unwrap();
    let clock = common::clock();
    let pipeline = common::pipeline(&config_with_hook(dir.path(), &sim, &hook), &clock);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();
    sim.state().add_referrals(1);
    pipeline.poll(&pipeline.sources[0], false).await.unwrap();

    let r = pipeline.deliver().await.unwrap();
    assert_eq!(
        (r.sent, r.dead),
        (2, 1),
        "the inbox message and the dead-letter note"
    );
    assert_eq!(capture.bodies.lock().unwrap().len(), 1);
}
