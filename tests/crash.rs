//! DESIGN §6 guarantee 2: killing the process at any moment loses no notification and repeats
//! none but the one in flight. A real `partnerwatch run` is SIGKILLed at random points while it
//! delivers to a slow webhook, and restarted, 30 times.

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;
use rand::{Rng, SeedableRng};

const REFERRALS: usize = 120;
const KILLS: usize = 30;

/// Counts POSTs per event id; answers after a pause so that kills land mid-delivery.
async fn slow_capture() -> (String, Arc<Mutex<HashMap<String, usize>>>) {
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let state = Arc::clone(&seen);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let seen = Arc::clone(&state);
            async move {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let id = v["event"]["id"].as_str().unwrap().to_string();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                tokio::time::sleep(Duration::from_millis(15)).await;
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
    for _ in 0..KILLS {
        let mut child = start(&config);
        std::thread::sleep(Duration::from_millis(rng.random_range(20..250)));
        child.kill().unwrap(); // SIGKILL
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
    let posts: usize = seen.values().sum();
    let repeats = posts - delivered;
    println!("{KILLS} kills: {delivered} messages delivered, {posts} POSTs, {repeats} repeated");
    assert_eq!(delivered, REFERRALS, "every notification arrived");
    assert!(
        repeats <= KILLS,
        "at most the message in flight is repeated per kill ({repeats} repeats)"
    );
}
