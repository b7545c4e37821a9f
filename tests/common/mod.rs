//! Shared test helpers: a simulator, a configuration written to a real file, a pipeline.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use partnerwatch::clock::ManualClock;
use partnerwatch::config::Config;
use partnerwatch::pipeline::{Assets, Pipeline};
use partnerwatch::sim::{SimConfig, Simulator};

pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// A simulator with `referrals` records served `page_size` per page.
pub async fn sim(referrals: usize, page_size: usize) -> Simulator {
    Simulator::start(
        SimConfig {
            referrals,
            page_size,
            seed: 42,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .expect("simulator starts")
}

/// Writes a configuration for `sim` into `dir` (state, inbox and rules inside it, the
/// repository's templates) and returns its path. `extra_source` lines go under `referrals:`.
pub fn write_config(dir: &Path, sim: &Simulator, extra_source: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/all.yaml"),
        "- name: everything\n  on: referral.*\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(
        dir.join("templates/any.text.hbs"),
        "{{kind}} {{entity_id}}\n{{#each changes}}{{this.path}}={{this.new}}\n{{/each}}",
    )
    .unwrap();
    let yaml = format!(
        r#"state_dir: ./state
auth:
  static_token: {token}
sources:
  referrals:
    base_url: {base}
    every: 1s
{extra_source}
channels:
  inbox: {{ type: inbox, dir: ./inbox }}
rules: ./rules
templates: ./templates
http:
  retries: 2
  backoff: 10ms
delivery:
  backoff: 10ms
"#,
        token = sim.token(),
        base = sim.referrals_base_url(),
    );
    let path = dir.join("partnerwatch.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Rewrites the configuration at `path` to read Partner Insights only, at `version` (e.g.
/// "v1.3"), with `extra` lines under `abss:`; a rule sends every Partner Insights event to
/// the inbox.
pub fn abss_only(path: &Path, sim: &Simulator, version: &str, extra: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let start = text.find("  referrals:").unwrap();
    let end = text.find("channels:").unwrap();
    let abss = format!(
        "  abss:\n    base_url: {}\n    every: 1s\n    page_size: 20\n{extra}",
        sim.abss_base_url(version)
    );
    std::fs::write(path, format!("{}{abss}{}", &text[..start], &text[end..])).unwrap();
    let rules = path.parent().unwrap().join("rules/all.yaml");
    std::fs::write(rules, "- name: all\n  on: [copilot.*, adoption_summary.*, copilot_summary.*, mci.*, mci_summary.*, partner_referral.*]\n  channels: [inbox]\n  template: any\n").unwrap();
}

/// A pipeline over the configuration at `path`, on a manual clock.
pub fn pipeline(path: &Path, clock: &ManualClock) -> Pipeline {
    let config = Config::load(path).expect("config loads");
    let assets = Assets::from_config(&config).expect("assets load");
    Pipeline::build(config, assets, Arc::new(clock.clone())).expect("pipeline builds")
}

pub fn clock() -> ManualClock {
    ManualClock::new("2026-11-23T08:00:00Z".parse().unwrap())
}

/// The files in a folder, sorted (empty if it does not exist).
pub fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// A simulator, a state folder with a configuration for it, and a pipeline on a manual clock.
pub struct Fixture {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub clock: ManualClock,
    pub pipeline: Pipeline,
}

pub async fn fixture(referrals: usize, page_size: usize) -> Fixture {
    let sim = sim(referrals, page_size).await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), &sim, "");
    let clock = clock();
    let pipeline = pipeline(&path, &clock);
    Fixture {
        sim,
        dir,
        clock,
        pipeline,
    }
}

/// Polls every source once (the baseline, in most tests).
#[allow(async_fn_in_trait)]
pub trait PollAll {
    async fn poll_all(&self);
}

impl PollAll for Pipeline {
    async fn poll_all(&self) {
        for source in &self.sources {
            self.poll(source, false).await.unwrap();
        }
    }
}

/// A simulator of `referrals` records on its own runtime, for tests that also run processes.
pub fn sim_runtime(referrals: usize, page_size: usize) -> (tokio::runtime::Runtime, Simulator) {
    sim_runtime_with(SimConfig {
        referrals,
        page_size,
        seed: 42,
        ..SimConfig::default()
    })
}

/// A simulator started from `config` on its own runtime.
pub fn sim_runtime_with(config: SimConfig) -> (tokio::runtime::Runtime, Simulator) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let sim = rt
        .block_on(Simulator::start(config, 0))
        .expect("simulator starts");
    (rt, sim)
}

/// A simulator on its own runtime that lives at the system time, for tests that run the
/// commands (which run on the system clock): a referral that arrives "now" is 14 days from
/// its deadline on both sides.
pub fn sim_runtime_now(referrals: usize, page_size: usize) -> (tokio::runtime::Runtime, Simulator) {
    sim_runtime_with(SimConfig {
        referrals,
        page_size,
        seed: 42,
        start: jiff::Timestamp::now(),
        ..SimConfig::default()
    })
}

/// What an in-process SMTP server (mailin-embedded) received: one raw message per DATA.
#[derive(Clone, Default)]
pub struct Mailbox(pub Arc<std::sync::Mutex<Vec<Vec<u8>>>>, Vec<u8>);

impl mailin_embedded::Handler for Mailbox {
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.1.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> mailin_embedded::Response {
        self.0.lock().unwrap().push(std::mem::take(&mut self.1));
        mailin_embedded::response::OK
    }
}

impl Mailbox {
    /// The messages received so far.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        self.0.lock().unwrap().clone()
    }
}

/// Starts a real SMTP server on a free loopback port.
pub fn smtp_server() -> (u16, Mailbox) {
    let mailbox = Mailbox::default();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = mailin_embedded::Server::new(mailbox.clone());
    server.with_name("mail.test").with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (port, mailbox)
}

/// The ids of the records the store holds for `dataset`.
pub fn stored_ids(
    store: &partnerwatch::store::Store,
    dataset: &str,
) -> std::collections::BTreeSet<String> {
    store
        .records(dataset)
        .unwrap()
        .iter()
        .map(|r| r.unwrap().0)
        .collect()
}

/// `partnerwatch --config CONFIG ARGS…` run as a user runs it (a process of its own, no
/// inherited configuration or log filter): whether it succeeded, its stdout and its stderr.
pub fn partnerwatch(config: &Path, args: &[&str]) -> (bool, String, String) {
    use assert_cmd::cargo::CommandCargoExt;
    let out = std::process::Command::cargo_bin("partnerwatch")
        .unwrap()
        .env_remove("PARTNERWATCH_CONFIG")
        .env_remove("RUST_LOG")
        .env_remove("AZURE_FEDERATED_TOKEN_FILE")
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A loopback port that was free a moment ago (for `listen`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `/healthz`: the status code and the body.
pub fn healthz(rt: &tokio::runtime::Runtime, port: u16) -> Option<(u16, serde_json::Value)> {
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let code = r.status().as_u16();
        Some((code, r.json().await.ok()?))
    })
}

/// Waits until `done`; on a timeout the daemon's log says what it did.
pub fn wait_for(
    what: &str,
    log: &Path,
    timeout: std::time::Duration,
    mut done: impl FnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}; the daemon's log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `partnerwatch run` as a process of its own, its log in `log`, once `ready` says so.
pub fn start_run(config: &Path, log: &Path, ready: impl FnMut() -> bool) -> std::process::Child {
    use assert_cmd::cargo::CommandCargoExt;
    let child = std::process::Command::cargo_bin("partnerwatch")
        .unwrap()
        .env_remove("RUST_LOG")
        .env_remove("PARTNERWATCH_CONFIG")
        .arg("--config")
        .arg(config)
        .arg("run")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    wait_for("the daemon", log, std::time::Duration::from_secs(30), ready);
    child
}
