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
