//! DESIGN §6 guarantee 2: killing the process at any moment loses no notification and repeats
//! none but the one in flight. A real `partnerwatch run` is SIGKILLed at random points while it
//! delivers to a slow webhook, and restarted, 30 times. The webhook notes when each POST came
//! in and when it was answered, so every repeat can be matched to a kill that landed while
//! that message was in flight.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use rand::{Rng, SeedableRng};

const REFERRALS: usize = 120;
const KILLS: usize = 30;

/// Every POST per event id, as (arrived, answered); answers after a pause so that kills land
/// mid-delivery.
type Posts = Arc<Mutex<HashMap<String, Vec<(Instant, Option<Instant>)>>>>;

async fn slow_capture() -> (String, Posts) {
    let seen: Posts = Arc::default();
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = Arc::clone(&state);
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let id = v["event"]["id"].as_str().unwrap().to_string();
                let n = {
                    let mut seen = seen.lock().unwrap();
                    let posts = seen.entry(id.clone()).or_default();
                    posts.push((Instant::now(), None));
                    posts.len() - 1
                };
                tokio::time::sleep(Duration::from_millis(15)).await;
                seen.lock().unwrap().get_mut(&id).unwrap()[n].1 = Some(Instant::now());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

fn start(config: &std::path::Path) -> Child {
    Command::cargo_bin("partnerwatch")
        .unwrap()
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(config)
        .arg("-q")
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn kill_during_delivery_loses_nothing_and_repeats_at_most_the_message_in_flight() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt.block_on(common::sim(0, 50));
    let (hook, seen) = rt.block_on(slow_capture());
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        &format!("channels:\n  hook: {{ type: webhook, url: \"{hook}\" }}\n"),
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: arrivals\n  on: referral.new\n  channels: [hook]\n  template: any\n",
    )
    .unwrap();

    // The baseline (empty), then a burst of arrivals for the daemon to announce.
    let status = Command::cargo_bin("partnerwatch")
        .unwrap()
        .arg("--config")
        .arg(&config)
        .arg("-q")
        .arg("poll")
        .status()
        .unwrap();
    assert!(status.success());
    sim.state().add_referrals(REFERRALS);

    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut kills = Vec::new();
    for _ in 0..KILLS {
        let mut child = start(&config);
        // Up to 600 ms in: past the first batches, so that outcomes kept unstored longer than
        // the group-commit window (100 ms) would be sent again without a kill in flight.
        std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        child.kill().unwrap(); // SIGKILL
        kills.push(Instant::now());
        child.wait().unwrap();
    }
    let mut child = start(&config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < REFERRALS && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap();
    child.wait().unwrap();

    let seen = seen.lock().unwrap();
    let delivered = seen.len();
    let posts: usize = seen.values().map(Vec::len).sum();
    let repeats = posts - delivered;
    // A message is in flight from the moment its POST arrives until the daemon has stored
    // that it was sent: outcomes are stored by group commit, at most about 100 ms after the
    // answer (`BATCH_WINDOW`) plus one flush; 300 ms leaves room for a loaded machine.
    let slack = Duration::from_millis(300);
    let in_flight_at = |kill: Instant| {
        seen.values()
            .flatten()
            .filter(|(arrived, answered)| {
                *arrived <= kill && answered.is_none_or(|a| kill <= a + slack)
            })
            .count()
    };
    let during_sends = kills.iter().filter(|k| in_flight_at(**k) > 0).count();
    let in_flight: usize = kills.iter().map(|k| in_flight_at(*k)).sum();
    println!(
        "{KILLS} kills, {during_sends} of them during a send: {delivered} messages delivered, {posts} POSTs, {repeats} repeated"
    );
    assert_eq!(delivered, REFERRALS, "every notification arrived");
    // Every repeat of a message follows a kill that landed while its earlier POST was in flight.
    for (id, attempts) in seen.iter() {
        for (arrived, answered) in &attempts[..attempts.len() - 1] {
            assert!(
                kills
                    .iter()
                    .any(|k| arrived <= k && answered.is_none_or(|a| *k <= a + slack)),
                "event {id} was sent again without a kill while it was in flight: {attempts:?}"
            );
        }
    }
    assert!(
        repeats <= in_flight,
        "at most the messages in flight at each kill are repeated ({repeats} repeats, {in_flight} in flight at kills)"
    );
}
