//! `cargo bench --bench deliver`: 1,000 deliveries through the real outbox to a local webhook
//! sink, against a plain loop of the same 1,000 POSTs to the same sink measured in the same run
//! (DESIGN §7: "at the sink's pace, and none lost when it answers 429"). A second round has the
//! sink answer every third request 429 with `Retry-After: 0`; every message must still arrive
//! exactly once. Prints `deliver messages=… seconds=… baseline_seconds=… ratio=…
//! with_429_seconds=… throttled=… delivered=… duplicates=…`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::http::StatusCode;
use axum::response::IntoResponse;
use partnerwatch::clock::{Clock, SystemClock};
use partnerwatch::config::Config;
use partnerwatch::model::{Delivery, Message};
use partnerwatch::pipeline::{Assets, Pipeline};

const MESSAGES: usize = 1_000;

#[derive(Default)]
struct Sink {
    /// Message title → times received with a 2xx answer.
    received: Mutex<HashMap<String, u32>>,
    requests: AtomicU64,
    /// Answer every n-th request 429 (0: never).
    throttle_every: AtomicU64,
    throttled: AtomicU64,
}

async fn sink(
    axum::extract::State(sink): axum::extract::State<Arc<Sink>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let n = sink.requests.fetch_add(1, Ordering::SeqCst) + 1;
    let every = sink.throttle_every.load(Ordering::SeqCst);
    if every > 0 && n % every == 0 {
        sink.throttled.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            "slow down",
        )
            .into_response();
    }
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let title = value["message"]["title"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    *sink.received.lock().unwrap().entry(title).or_default() += 1;
    StatusCode::OK.into_response()
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(bench());
}

async fn bench() {
    let state = Arc::new(Sink::default());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(sink))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The sink's pace: the same bodies, POSTed one after another by a plain client.
    let client = reqwest::Client::new();
    let started = Instant::now();
    for i in 0..MESSAGES {
        let body = serde_json::json!({"rule": "bench", "channel": "hook", "event": null,
            "message": {"title": format!("baseline {i}"), "body": "x", "text": null}});
        let r = client.post(&url).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let baseline = started.elapsed().as_secs_f64();

    // As the daemon delivers: on the thread that sweeps.
    let on_sweep_thread = |prefix: &'static str| {
        let url = url.clone();
        partnerwatch::cli::on_sweep_thread(move || async move { round(&url, prefix).await })
    };
    let (seconds, _) = on_sweep_thread("plain").await.unwrap();
    state.throttle_every.store(3, Ordering::SeqCst);
    let (with_429, passes) = on_sweep_thread("throttled").await.unwrap();

    let received = state.received.lock().unwrap();
    let delivered = |prefix: &str| {
        received
            .iter()
            .filter(|(t, _)| t.starts_with(prefix))
            .count()
    };
    let duplicates: u32 = received.values().map(|n| n.saturating_sub(1)).sum();
    assert_eq!(delivered("plain "), MESSAGES, "every message arrived");
    assert_eq!(
        delivered("throttled "),
        MESSAGES,
        "every message arrived despite 429s"
    );
    println!(
        "deliver messages={MESSAGES} seconds={seconds:.3} baseline_seconds={baseline:.3} ratio={:.2} with_429_seconds={with_429:.3} passes={passes} throttled={} delivered={} duplicates={duplicates}",
        seconds / baseline,
        state.throttled.load(Ordering::SeqCst),
        delivered("plain ") + delivered("throttled "),
    );
}

/// Queues [`MESSAGES`] deliveries titled `PREFIX N` and runs the outbox until none is
/// pending; returns the seconds it took and the number of outbox passes.
async fn round(url: &str, prefix: &str) -> (f64, usize) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["rules", "templates"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let yaml = format!(
        "state_dir: ./state\nlisten: \"off\"\nchannels:\n  hook: {{ type: webhook, url: \"{url}\" }}\ndelivery:\n  backoff: 1ms\n  max_attempts: 50\n"
    );
    let path = dir.path().join("partnerwatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    let config = Config::load(&path).unwrap();
    let assets = Assets::from_config(&config).unwrap();
    let pipeline = Pipeline::build(config, assets, Arc::new(SystemClock)).unwrap();
    let now = SystemClock.now();
    let deliveries: Vec<Delivery> = (0..MESSAGES)
        .map(|i| {
            let message = Message {
                title: format!("{prefix} {i}"),
                body: partnerwatch::model::Body::Text { text: "x".into() },
            };
            Delivery::pending(&format!("e{i}"), None, "bench", "hook", message, now)
        })
        .collect();
    pipeline
        .store
        .commit_digest(None, now, &deliveries)
        .unwrap();
    let started = Instant::now();
    let mut passes = 0;
    loop {
        passes += 1;
        let report = pipeline.deliver().await.unwrap();
        assert_eq!(report.dead, 0);
        let pending = pipeline
            .store
            .deliveries(Some(partnerwatch::model::DeliveryStatus::Pending))
            .unwrap()
            .len();
        if pending == 0 {
            break;
        }
        assert!(passes < 10_000, "the outbox does not drain");
    }
    (started.elapsed().as_secs_f64(), passes)
}
