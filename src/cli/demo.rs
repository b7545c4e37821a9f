//! `partnerwatch demo`: the whole pipeline with no configuration — the simulator, the shipped
//! rules and templates, a console channel and an inbox folder — on a simulated clock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use jiff::SignedDuration;

use crate::clock::ManualClock;
use crate::config::{ChannelConfig, Config, EnvString, Every, ReferralsConfig, Secret};
use crate::pipeline::{Assets, Pipeline};
use crate::scheduler::Scheduler;
use crate::sim::{SimConfig, Simulator};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Run a fixed short scenario as fast as possible and exit (for scripts and tests).
    #[arg(long)]
    pub once: bool,
    /// Simulated days to run (about four real seconds each).
    #[arg(long, default_value_t = 14, value_name = "N")]
    pub days: u32,
    /// Where the demo keeps its state and inbox; its state/ and inbox/ are wiped at start.
    #[arg(long, default_value = "partnerwatch-demo", value_name = "DIR")]
    pub dir: PathBuf,
}

/// Simulated time between two polls.
const STEP: SignedDuration = SignedDuration::from_hours(3);

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let sim_config = SimConfig {
        referrals: 30,
        tenants: 12,
        page_size: 10,
        arrivals_per_day: 4.0,
        ..SimConfig::default()
    };
    let clock = ManualClock::new(sim_config.start);
    let sim = Simulator::start(sim_config, 0)
        .await
        .context("cannot start the simulator")?;
    let config = demo_config(&args.dir, &sim)?;
    let inbox = args.dir.join("inbox");
    let assets = Assets::shipped(&config.channels, &config.timezone)?;
    let pipeline = Pipeline::build(config, assets, Arc::new(clock.clone()))?;

    println!(
        "partnerwatch demo — simulator on http://{}, simulated time starts {}",
        sim.addr(),
        clock.now_string()
    );
    println!("First sweep: a baseline. Existing referrals are remembered, not announced.\n");
    for source in &pipeline.sources {
        let report = pipeline.poll(source, false).await?;
        super::poll::print_report(&report, false);
    }

    let mut events = 0;
    if args.once {
        // A fixed scenario: two referrals arrive, one is accepted, one disappears.
        let accepted = {
            let mut s = sim.state();
            let open: Vec<String> = s
                .referrals()
                .iter()
                .filter(|r| r["status"] == "New")
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect();
            s.add_referrals(2);
            let accepted = open.first().cloned();
            if let Some(id) = &accepted {
                s.patch_referral(
                    id,
                    &serde_json::json!({"status": "Active", "substatus": "Accepted"}),
                );
            }
            if let Some(id) = open.get(1) {
                s.remove_referral(id);
            }
            // And one customer's Copilot adoption slides.
            if let Some(t) = s
                .tenants()
                .first()
                .and_then(|t| t["tenantId"].as_str())
                .map(str::to_string)
            {
                s.patch_tenant(&t, &serde_json::json!({"adoptionStatus": "Healthy"}));
            }
            accepted
        };
        clock.advance(STEP);
        println!(
            "\n[{}] two referrals arrive, {} is accepted, another is withdrawn\n",
            clock.now_string(),
            accepted.as_deref().unwrap_or("one")
        );
        for source in &pipeline.sources {
            events += pipeline.poll(source, false).await?.events.len();
        }
        let first_tenant = sim
            .state()
            .tenants()
            .first()
            .and_then(|t| t["tenantId"].as_str())
            .map(str::to_string);
        if let Some(t) = first_tenant {
            sim.state().patch_tenant(
                &t,
                &serde_json::json!({"adoptionStatus": "Failure to Thrive/Adopt"}),
            );
        }
        clock.advance(STEP);
        println!(
            "\n[{}] a customer's Copilot adoption slides\n",
            clock.now_string()
        );
        for source in &pipeline.sources {
            events += pipeline.poll(source, false).await?.events.len();
        }
        events += accept_one(&pipeline, &sim, &clock).await?;
        pipeline.deliver().await?;
    } else {
        let steps = args.days as i64 * 24 / STEP.as_hours();
        let pause = Duration::from_millis(60_000 / (14 * 24 / STEP.as_hours()) as u64);
        let mut schedule = Scheduler::new(&pipeline);
        for step in 0..steps {
            // On the first day you answer one referral from partnerwatch itself.
            if step == 24 / STEP.as_hours() {
                events += accept_one(&pipeline, &sim, &clock).await?;
            }
            let now = clock.advance(STEP);
            sim.state().advance_to(now);
            // The steps of a tick one by one, so each says what it did before the next prints.
            for sweep in schedule.sweep_due().await {
                match &sweep.result {
                    Ok(report) => {
                        events += report.events.len();
                        if !report.events.is_empty() {
                            println!(
                                "[{}] {}: {} event(s)",
                                clock.now_string(),
                                sweep.source,
                                report.events.len()
                            );
                        }
                    }
                    Err(e) => eprintln!(
                        "[{}] {} sweep failed: {e}",
                        clock.now_string(),
                        sweep.source
                    ),
                }
            }
            for d in schedule.queue_digests()? {
                println!(
                    "[{}] the {} digest goes out ({} message(s))",
                    clock.now_string(),
                    d.name,
                    d.deliveries
                );
            }
            schedule.deliver().await?;
            tokio::time::sleep(pause).await;
        }
    }
    let sent = pipeline
        .store
        .deliveries(Some(crate::model::DeliveryStatus::Sent))?
        .len();
    println!(
        "\nDone: {events} event(s), {sent} message(s) delivered. The inbox is {}",
        inbox.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Accepts the most valuable referral still to be answered, as `partnerwatch referral accept`
/// or a Telegram button would: through Partner Center's API, at most once, announced.
async fn accept_one(
    pipeline: &crate::pipeline::Pipeline,
    sim: &Simulator,
    clock: &ManualClock,
) -> anyhow::Result<usize> {
    let best = {
        let s = sim.state();
        s.referrals()
            .iter()
            .filter(|r| r["status"] == "New" && r["direction"] != "Outgoing")
            .max_by_key(|r| r["details"]["dealValue"].as_i64().unwrap_or(0))
            .and_then(|r| r["id"].as_str().map(str::to_string))
    };
    let Some(id) = best else { return Ok(0) };
    // partnerwatch acts on what it has stored: let it see the referral first.
    if let Some(source) = pipeline.sources.first() {
        pipeline.poll(source, false).await?;
    }
    let request = crate::actions::apply::Request {
        referral: id,
        verb: crate::actions::Verb::Accept,
        reason: None,
        update: crate::actions::Update::default(),
        by: "you (demo)".into(),
        via: "cli".into(),
    };
    let outcome = pipeline.act(&request).await?;
    println!(
        "\n[{}] you accept the most valuable open referral from partnerwatch (`partnerwatch referral accept`): {}\n",
        clock.now_string(),
        outcome.say(crate::actions::Verb::Accept)
    );
    Ok(1)
}

fn demo_config(dir: &Path, sim: &Simulator) -> anyhow::Result<Config> {
    for sub in ["state", "inbox"] {
        let p = dir.join(sub);
        if p.exists() {
            std::fs::remove_dir_all(&p).with_context(|| format!("cannot clear {}", p.display()))?;
        }
    }
    let inbox = dir.join("inbox");
    let mut channels = BTreeMap::new();
    channels.insert("log".to_string(), ChannelConfig::Console {});
    channels.insert(
        "inbox".to_string(),
        ChannelConfig::Inbox {
            dir: EnvString(inbox.to_string_lossy().into_owned()),
        },
    );
    Ok(Config {
        links: crate::config::LinksConfig::default(),
        actions: None,
        file: PathBuf::from("(demo)"),
        state_dir: dir.join("state"),
        timezone: jiff::tz::TimeZone::UTC,
        auth: crate::config::AuthConfig {
            static_token: Some(Secret::new(sim.token())),
            ..Default::default()
        },
        license_usage: None,
        abss: Some(crate::config::AbssConfig {
            // The simulator is local and unthrottled; at 600 calls a minute the demo's
            // fortnight would take minutes instead of one.
            calls_per_minute: 60_000,
            // Every simulated step, like the referrals.
            every: Every(Duration::from_secs(STEP.as_secs() as u64)),
            ..crate::config::AbssConfig::at(&sim.abss_base_url("v1.5"))
        }),
        referrals: Some(ReferralsConfig {
            every: Every(Duration::from_secs(STEP.as_secs() as u64)),
            ..ReferralsConfig::at(&sim.referrals_base_url())
        }),
        channels,
        rules_dir: PathBuf::from("rules"),
        templates_dir: PathBuf::from("templates"),
        delivery: Default::default(),
        history_versions: crate::config::DEFAULT_HISTORY_VERSIONS,
        listen: None,
        // Mondays at 08:00: the simulated fortnight starts on one, so two digests arrive.
        digests: vec![crate::config::DigestConfig {
            name: "weekly".into(),
            schedule: "0 8 * * MON".into(),
            slots: crate::cron::Schedule::parse("0 8 * * MON", jiff::tz::TimeZone::UTC)
                .expect("the demo's schedule parses"),
            channels: vec!["inbox".into()],
            template: crate::config::DEFAULT_DIGEST_TEMPLATE.into(),
        }],
        places: Default::default(),
        http: crate::http::HttpConfig {
            backoff: Every(Duration::from_millis(100)),
            ..Default::default()
        },
    })
}

impl ManualClock {
    fn now_string(&self) -> String {
        use crate::clock::Clock;
        self.now().strftime("%a %Y-%m-%d %H:%M UTC").to_string()
    }
}
