//! `cargo bench --bench sweep`: one sweep of 100,000 referrals (~1.5 KB each) with 1 % changed,
//! through the real source (HTTP), store and detectors, against a plain Python dict-diff of the
//! same data measured in the same run (DESIGN §7).
//!
//! Every phase runs in its own process so that each figure is its own: a page server, the
//! baseline sweep that fills the store (setup), the measured sweep (CPU time and peak RSS of
//! that process alone), and `python3 benches/baseline.py`. The last line is
//! `sweep records=… changed=… cpu_s=… peak_rss_mb=… baseline_cpu_s=… speedup=… first_cpu_s=…
//! first_peak_rss_mb=…`, the `first_` figures being those of the baseline sweep.
//! `PW_BENCH_RECORDS` sets another size; with `PW_BENCH_WINDOW` the measured sweep also prints
//! when it started and ended on the monotonic clock, to cut a `perf record -k CLOCK_MONOTONIC`
//! profile down to the sweep alone.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rand::SeedableRng;

const PAGE: usize = 500;

fn main() {
    match std::env::var("PW_BENCH_ROLE").as_deref() {
        Ok("serve") => serve(Path::new(&std::env::var("PW_BENCH_DIR").unwrap())),
        Ok("sweep") => sweep(
            &std::env::var("PW_BENCH_URL").unwrap(),
            Path::new(&std::env::var("PW_BENCH_STATE").unwrap()),
        ),
        _ => orchestrate(),
    }
}

fn records_wanted() -> usize {
    std::env::var("PW_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

fn child(role: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env("PW_BENCH_ROLE", role);
    cmd
}

fn orchestrate() {
    let n = records_wanted();
    let tmp = tempfile::tempdir().unwrap();
    // PW_BENCH_KEEP=DIR keeps the data there, to run PW_BENCH_ROLE=serve/sweep by hand (profiling).
    let dir = std::env::var("PW_BENCH_KEEP")
        .map(PathBuf::from)
        .unwrap_or_else(|_| tmp.path().to_path_buf());
    let (bytes, changed) = generate(&dir, n);
    eprintln!(
        "generated {n} referrals, {} bytes on average, {changed} changed",
        bytes / n as u64
    );

    let mut server = KillOnDrop(
        child("serve")
            .env("PW_BENCH_DIR", &dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut port_line = String::new();
    BufReader::new(server.0.stdout.take().unwrap())
        .read_line(&mut port_line)
        .unwrap();
    let base = format!("http://127.0.0.1:{}", port_line.trim());
    let state = dir.join("state");

    let run_sweep = |snapshot: &str| -> String {
        common::stdout_of(
            child("sweep")
                .env("PW_BENCH_URL", format!("{base}/{snapshot}/v1.0"))
                .env("PW_BENCH_STATE", &state),
        )
    };
    let setup = run_sweep("old");
    eprintln!("baseline sweep (setup): {setup}");
    let measured = run_sweep("new");
    eprintln!("measured sweep: {measured}");
    drop(server);

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/baseline.py");
    let py = Command::new("python3")
        .arg(script)
        .arg(dir.join("old.json"))
        .arg(dir.join("new.json"))
        .output()
        .expect("python3 runs");
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let py = String::from_utf8(py.stdout).unwrap();
    eprintln!("python baseline: {}", py.trim());

    let field = |line: &str, key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    let first_cpu = field(&setup, "cpu_s");
    let first_rss = field(&setup, "peak_rss_mb");
    let cpu = field(&measured, "cpu_s");
    let rss = field(&measured, "peak_rss_mb");
    let seen_changed = field(&measured, "changed") as usize;
    assert_eq!(
        seen_changed, changed,
        "the sweep found exactly the changed records"
    );
    assert_eq!(
        field(&py, "changed") as usize,
        changed,
        "the baseline agrees"
    );
    let baseline = field(&py, "baseline_cpu_s");
    println!(
        "sweep records={n} changed={changed} cpu_s={cpu:.3} peak_rss_mb={rss:.1} baseline_cpu_s={baseline:.3} speedup={:.1} first_cpu_s={first_cpu:.3} first_peak_rss_mb={first_rss:.1}",
        baseline / cpu
    );
}

/// A child process that is killed when the orchestrator is done with it, or panics.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// Writes `old/page-N.json`, `new/page-N.json` and the whole snapshots `old.json`, `new.json`.
/// One record in a hundred differs between the two. Returns (bytes of old records, changed).
fn generate(dir: &Path, n: usize) -> (u64, usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let now: jiff::Timestamp = "2026-11-23T08:00:00Z".parse().unwrap();
    // Two years of referrals, newest last; most are long closed, as in a real tenant.
    let span = jiff::SignedDuration::from_hours(2 * 365 * 24).as_secs() / n.max(1) as i64;
    let mut snapshots = [
        std::fs::File::create(dir.join("old.json")).unwrap(),
        std::fs::File::create(dir.join("new.json")).unwrap(),
    ];
    for s in &mut snapshots {
        s.write_all(b"[").unwrap();
    }
    for snap in ["old", "new"] {
        std::fs::create_dir_all(dir.join(snap)).unwrap();
    }
    let pages = n.div_ceil(PAGE);
    let (mut bytes, mut changed) = (0u64, 0usize);
    let mut page_bufs = [Vec::new(), Vec::new()];
    for i in 0..n {
        let created = now - jiff::SignedDuration::from_secs((n - i) as i64 * span);
        let mut r = partnerwatch::sim::referrals::new_referral(
            &mut rng,
            created,
            "https://api.partner.microsoft.com",
        );
        // ~1.5 KB like the target size: drop the bulkiest nested parts.
        for key in ["links", "team", "consent", "target", "inviteContext"] {
            r.as_object_mut().unwrap().remove(key);
        }
        r["customerProfile"].as_object_mut().unwrap().remove("team");
        if now.duration_since(created) > jiff::SignedDuration::from_hours(14 * 24) {
            let outcome = ["Won", "Lost", "Expired", "Declined"][i % 4];
            partnerwatch::sim::referrals::transition(
                &mut rng,
                &mut r,
                created + jiff::SignedDuration::from_hours(72),
                "Closed",
                outcome,
            );
        }
        let old = serde_json::to_vec(&r).unwrap();
        let new = if i % 100 == 7 {
            changed += 1;
            r["details"]["dealValue"] =
                serde_json::json!(r["details"]["dealValue"].as_i64().unwrap() + 1000);
            r["updatedDateTime"] = serde_json::json!("2026-11-23T08:00:00.0000000Z");
            serde_json::to_vec(&r).unwrap()
        } else {
            old.clone()
        };
        bytes += old.len() as u64;
        for (k, rec) in [old, new].iter().enumerate() {
            let sep: &[u8] = if i == 0 { b"" } else { b"," };
            snapshots[k].write_all(sep).unwrap();
            snapshots[k].write_all(rec).unwrap();
            if i % PAGE != 0 {
                page_bufs[k].push(b',');
            }
            page_bufs[k].extend_from_slice(rec);
        }
        if i % PAGE == PAGE - 1 || i == n - 1 {
            let page = i / PAGE;
            for (k, snap) in ["old", "new"].iter().enumerate() {
                let next = if page + 1 < pages {
                    format!(
                        ",\"@odata.nextLink\":\"http://127.0.0.1/v1.0/referrals?$skiptoken={}\"",
                        page + 1
                    )
                } else {
                    String::new()
                };
                let count = if page == 0 {
                    format!("\"@odata.count\":{n},")
                } else {
                    String::new()
                };
                let mut body = format!("{{{count}\"value\":[").into_bytes();
                body.extend_from_slice(&page_bufs[k]);
                body.extend_from_slice(format!("]{next}}}").as_bytes());
                std::fs::write(dir.join(snap).join(format!("page-{page}.json")), body).unwrap();
                page_bufs[k].clear();
            }
        }
    }
    for s in &mut snapshots {
        s.write_all(b"]").unwrap();
    }
    (bytes, changed)
}

/// Serves the pages from files; prints its port, then runs until killed.
fn serve(dir: &Path) {
    use axum::extract::{Path as UrlPath, RawQuery, State};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap().port());
        std::io::stdout().flush().unwrap();
        let app = axum::Router::new()
            .route(
                "/{snap}/v1.0/engagements/referrals",
                axum::routing::get(
                    |State(dir): State<Arc<PathBuf>>,
                     UrlPath(snap): UrlPath<String>,
                     RawQuery(q): RawQuery| async move {
                        let page: usize = q
                            .as_deref()
                            .and_then(|q| {
                                q.split('&').find_map(|kv| kv.strip_prefix("$skiptoken="))
                            })
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        let body =
                            tokio::fs::read(dir.join(snap).join(format!("page-{page}.json")))
                                .await
                                .unwrap();
                        (
                            [(axum::http::header::CONTENT_TYPE, "application/json")],
                            body,
                        )
                    },
                ),
            )
            .with_state(Arc::new(dir.to_path_buf()));
        axum::serve(listener, app).await.unwrap();
    });
}

/// One sweep through the real pipeline; prints its CPU time and this process's peak RSS.
fn sweep(base_url: &str, state: &Path) {
    use partnerwatch::config::{Config, ReferralsConfig, Secret};
    use partnerwatch::pipeline::{Assets, Pipeline};
    let rt = partnerwatch::cli::runtime().unwrap();
    let config = Config {
        links: partnerwatch::config::LinksConfig::default(),
        actions: None,
        file: PathBuf::from("(bench)"),
        state_dir: state.to_path_buf(),
        timezone: jiff::tz::TimeZone::UTC,
        auth: partnerwatch::config::AuthConfig {
            static_token: Some(Secret::new("bench")),
            ..Default::default()
        },
        license_usage: None,
        abss: None,
        referrals: Some(ReferralsConfig {
            incremental: std::env::var("PW_BENCH_INCREMENTAL").is_ok(),
            ..ReferralsConfig::at(base_url)
        }),
        channels: Default::default(),
        rules_dir: PathBuf::from("rules"),
        templates_dir: PathBuf::from("templates"),
        delivery: Default::default(),
        http: Default::default(),
        history_versions: partnerwatch::config::DEFAULT_HISTORY_VERSIONS,
        listen: None,
        digests: Vec::new(),
        places: Default::default(),
    };
    let assets =
        Assets::shipped(&Default::default(), &jiff::tz::TimeZone::UTC).unwrap_or_else(|_| Assets {
            templates: partnerwatch::templates::Templates::from_sources(
                Path::new("templates"),
                Vec::new(),
                &jiff::tz::TimeZone::UTC,
            )
            .unwrap(),
            rules: Default::default(),
        });
    let clock = Arc::new(partnerwatch::clock::ManualClock::new(
        "2026-11-23T08:00:00Z".parse().unwrap(),
    ));
    let pipeline = Pipeline::build(config, assets, clock).unwrap();
    if std::env::var("PW_BENCH_PROBE").is_ok() {
        let rss = || {
            std::fs::read_to_string("/proc/self/status")
                .unwrap()
                .lines()
                .find(|l| l.starts_with("VmRSS"))
                .unwrap()
                .to_string()
        };
        eprintln!("after open: {}", rss());
        let (c0, _) = common::rusage();
        let h = pipeline.store.index("referrals").unwrap();
        let (c1, _) = common::rusage();
        eprintln!("hashes: {} in {:.3}s, {}", h.len(), c1 - c0, rss());
        drop(h);
    }
    let (cpu0, _) = common::rusage();
    let start = std::time::Instant::now();
    // As the daemon and `poll` run it: on the thread that sweeps.
    let report = rt
        .block_on(partnerwatch::cli::on_sweep_thread(move || async move {
            pipeline.poll(&pipeline.sources[0], false).await
        }))
        .unwrap()
        .unwrap();
    let (cpu1, peak) = common::rusage();
    if std::env::var("PW_BENCH_WINDOW").is_ok() {
        // For a profile of the sweep alone: `perf record -k CLOCK_MONOTONIC` stamps its
        // samples on the clock `Instant` reads.
        eprintln!("window {:?} {:?}", start, std::time::Instant::now());
    }
    let changed = report
        .events
        .iter()
        .filter(|e| e.kind == partnerwatch::model::EventKind::ReferralChanged)
        .count();
    println!(
        "cpu_s={:.3} peak_rss_mb={peak:.1} records={} pages={} changed={changed} baseline={}",
        cpu1 - cpu0,
        report.records,
        report.pages,
        report.baseline
    );
}
