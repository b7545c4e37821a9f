//! `partnerwatch simulate`: the Partner Center simulator on its own.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use jiff::{SignedDuration, Timestamp};

use crate::sim::{SimConfig, Simulator};

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Referrals that exist at the start.
    #[arg(long, default_value_t = 250)]
    pub referrals: usize,
    /// Records per page.
    #[arg(long, default_value_t = 100)]
    pub page_size: usize,
    /// Seed of the generated data (the same seed gives the same referrals).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The bearer token the simulator accepts.
    #[arg(long, default_value = "partnerwatch-sim-token")]
    pub token: String,
    /// Simulated seconds per real second: 1 follows the wall clock, 3600 runs an hour a second.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

pub async fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let start = Timestamp::now().round(jiff::Unit::Second)?;
    let sim = Simulator::start(
        SimConfig {
            seed: args.seed,
            referrals: args.referrals,
            page_size: args.page_size,
            token: args.token.clone(),
            start,
            ..SimConfig::default()
        },
        args.port,
    )
    .await?;
    println!("Partner Center simulator on http://{}", sim.addr());
    println!();
    println!("Point a configuration at it:");
    println!("  auth:");
    println!("    static_token: {}", args.token);
    println!("  sources:");
    println!("    referrals:");
    println!("      base_url: {}", sim.referrals_base_url());
    println!("    abss:");
    println!("      base_url: {}", sim.abss_base_url("v1.3"));
    println!("    license_usage:");
    println!("      base_url: {}", sim.license_base_url());
    println!();
    println!("Controls: POST /_sim/advance {{\"hours\":24}} · POST /_sim/referrals {{\"count\":3}} · PATCH|DELETE /_sim/referrals/ID");
    println!("          POST /_sim/faults {{\"type\":\"status\",\"status\":500,\"page\":2}} · DELETE /_sim/faults · GET /_sim/stats");
    println!("Ctrl-C stops it.");
    let real_start = std::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let elapsed = real_start.elapsed().as_secs_f64() * args.speed;
                let target = start + SignedDuration::from_secs_f64(elapsed);
                let mut state = sim.state();
                if target > state.now {
                    state.advance_to(target);
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}
