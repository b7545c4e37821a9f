//! The command line (DESIGN §2). Every flag is defined once here with its documentation,
//! which is what `--help` shows. Commands live in their own modules; errors reach the user as
//! one `error:` line that says what to fix, with exit status 1 (2 for usage mistakes).

mod channels;
mod check;
mod demo;
mod digest;
mod inspect;
mod local;
mod login;
mod outbox;
mod poll;
pub mod referral;
mod render;
mod rules;
mod run;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub(crate) use local::Output;

/// partnerwatch watches your Microsoft Partner Center referrals, Partner Insights (Copilot
/// adoption, MCI performance, partner referrals) and license usage, detects what changed, and
/// tells the right people through Microsoft Teams, email, Telegram, webhooks or the console.
///
/// Start with `partnerwatch demo`: it needs no configuration and no Microsoft credentials.
#[derive(Debug, Parser)]
#[command(
    name = "partnerwatch",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// The configuration file.
    #[arg(
        long,
        global = true,
        env = "PARTNERWATCH_CONFIG",
        default_value = "partnerwatch.yaml",
        value_name = "FILE"
    )]
    pub config: PathBuf,

    /// How log lines are written to standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,

    /// More log output (-v debug, -vv trace). RUST_LOG, if set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the whole pipeline with zero configuration against the built-in simulator, on a
    /// simulated clock: referrals arrive, change and close, Copilot adoption moves, a weekly
    /// digest goes out on Mondays, and every message is printed and written to an inbox folder.
    Demo(demo::DemoArgs),
    /// The daemon: polls each source on its `every` schedule and delivers, serves /healthz and
    /// /metrics on `listen` (where it also answers `events`, `outbox`, `history` and `digest`
    /// while it holds the state), until SIGTERM or Ctrl-C (the work in flight is finished first).
    Run,
    /// One poll cycle of every source (or one), then delivers and exits. Exits 1 if a sweep failed.
    Poll(poll::PollArgs),
    /// Signs in with a device code (delegated App+User access, which the Referrals API needs);
    /// keeps the refresh token in the state folder, readable by the owner only.
    Login,
    /// Validates the configuration, rules and templates (rendering every template against a
    /// sample event); exits 1 with file:line:column on any error. With --online it then
    /// signs in and calls each configured API once.
    Check(check::CheckArgs),
    /// A digest for the week up to now: printed as text, written as an HTML preview
    /// (--preview FILE), or sent through its channels (--send). `run` sends them on schedule.
    Digest(digest::DigestArgs),
    /// Tests rules against events.
    #[command(subcommand)]
    Rules(rules::RulesCommand),
    /// Renders one template for an event, as a channel type would get it.
    Render(render::RenderArgs),
    /// Tests channels.
    #[command(subcommand)]
    Channels(channels::ChannelsCommand),
    /// Inspects the outbox and puts dead deliveries back in the queue.
    Outbox(outbox::OutboxArgs),
    /// Lists detected events from the state folder.
    Events(inspect::EventsArgs),
    /// Every stored version of one record, with a field diff between consecutive versions.
    History(inspect::HistoryArgs),
    /// Runs the Partner Center simulator alone, to try a configuration against.
    Simulate(simulate::SimulateArgs),
    /// Shows one referral, or accepts, declines, wins, loses or updates it in Partner Center
    /// (asking first unless --yes). Exit status: 0 done, 1 changed in Partner Center first
    /// (what changed is printed), 2 refused before anything was sent, 3 Partner Center
    /// refused or failed, 4 no answer (checked before anything is sent again).
    #[command(subcommand)]
    Referral(referral::ReferralCommand),
}

/// Runs the command line and returns the process exit status.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    if matches!(
        cli.command,
        Command::Outbox(_) | Command::Events(_) | Command::History(_)
    ) {
        quiet_on_closed_pipe();
    }
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = run_on_worker(&runtime, dispatch(cli));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "error: {}",
                crate::config::secret::redact(&format!("{e:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// The runtime every command runs on.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// Runs `work` as every command runs: as a task on one of `runtime`'s workers, the thread
/// that started it only waiting for the end. On the workers, a sweep and the connection that
/// reads its pages pass each chunk of a page without waking another thread (run on the
/// waiting thread instead, a steady sweep of 100,000 referrals takes about 5 % more CPU).
/// A panic of `work` goes on as the panic it was.
pub fn run_on_worker<F>(runtime: &tokio::runtime::Runtime, work: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    runtime.block_on(async {
        match tokio::spawn(work).await {
            Ok(output) => output,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("the command's task ended early: {e}"),
            },
        }
    })
}

/// Runs the work `make` starts on a thread of its own, on a runtime of one thread, and waits
/// for its end: where the daemon sweeps and delivers, and where `poll` does. A sweep and the
/// connection that reads its pages then pass each chunk within one thread. On the two workers
/// of the command runtime the idle one kept being woken to take the connection's task: a
/// steady sweep of 100,000 referrals took about 5 % more CPU (0.170 s against 0.161 s, eight
/// alternated pairs). The command runtime's workers stay free for the health endpoint, the
/// daemon's API and the Telegram listener. A panic of the work goes on as the panic it was.
pub async fn on_sweep_thread<F, Fut>(make: F) -> anyhow::Result<Fut::Output>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future,
    Fut::Output: Send + 'static,
{
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("partnerwatch-sweeps".into())
        .spawn(move || {
            let outcome = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .map(|runtime| {
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        runtime.block_on(make())
                    }))
                });
            let _ = done.send(outcome);
        })
        .map_err(|e| anyhow::anyhow!("cannot start the thread that sweeps: {e}"))?;
    match result.await {
        Ok(Ok(Ok(output))) => Ok(output),
        Ok(Ok(Err(panic))) => std::panic::resume_unwind(panic),
        Ok(Err(e)) => Err(e.context("cannot start the runtime that sweeps")),
        Err(_) => anyhow::bail!("the thread that sweeps ended without an answer"),
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => demo::demo(args).await,
        Command::Run => run::run(&cli.config).await,
        Command::Poll(args) => poll::poll(&cli.config, args).await,
        Command::Check(args) => check::check(&cli.config, args).await,
        Command::Login => login::login(&cli.config).await,
        Command::Digest(args) => {
            local::held(&cli.config, |config| async move {
                let assets = crate::pipeline::Assets::from_config(&config)?;
                let clock = std::sync::Arc::new(crate::clock::SystemClock);
                let pipeline = crate::pipeline::Pipeline::build(config, assets, clock)?;
                digest::digest(&pipeline, &args, false).await
            })
            .await
        }
        Command::Rules(c) => rules::rules(&cli.config, c),
        Command::Render(args) => render::render(&cli.config, args),
        Command::Channels(c) => channels::channels(&cli.config, c).await,
        Command::Outbox(args) => {
            local::held(&cli.config, |config| async move {
                outbox::outbox(&inspect::open_store(&config)?, &args)
            })
            .await
        }
        Command::Events(args) => {
            local::held(&cli.config, |config| async move {
                inspect::events(&inspect::open_store(&config)?, &args)
            })
            .await
        }
        Command::History(args) => {
            local::held(&cli.config, |config| async move {
                inspect::history(&inspect::open_store(&config)?, &args)
            })
            .await
        }
        Command::Simulate(args) => simulate::simulate(args).await,
        Command::Referral(c) => referral_command(&cli.config, c).await,
    }
}

/// `referral …`: by the daemon when it holds the state, here otherwise; an action asks at
/// the terminal first (showing the referral as stored) unless `--yes` was given.
async fn referral_command(
    config_path: &std::path::Path,
    command: referral::ReferralCommand,
) -> anyhow::Result<ExitCode> {
    let run_with = |args: Vec<String>, command: referral::ReferralCommand| {
        local::held_with(config_path, args, move |config| async move {
            let assets = crate::pipeline::Assets::from_config(&config)?;
            let clock = std::sync::Arc::new(crate::clock::SystemClock);
            let pipeline = crate::pipeline::Pipeline::build(config, assets, clock)?;
            referral::referral(&pipeline, &command).await
        })
    };
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut command = command;
    if let Some(verb) = command.asks() {
        let id = command.id().to_string();
        let show = referral::ReferralCommand::Show {
            id: id.clone(),
            json: false,
        };
        let shown = run_with(vec!["referral".into(), "show".into(), id], show).await?;
        if shown.code != 0 {
            return shown.emit();
        }
        eprint!("{}", shown.text);
        if !referral::confirm(verb, &shown.text) {
            eprintln!("nothing was sent (confirm at a terminal, or add --yes)");
            return Ok(ExitCode::from(2));
        }
        args.push("--yes".into());
        command.confirmed();
    }
    run_with(args, command).await?.emit()
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose, &cli.command) {
        (true, _, _) => "warn",
        (false, 0, Command::Demo(_)) => "warn",
        (false, 0, _) => "info",
        (false, 1, _) => "partnerwatch=debug,info",
        _ => "partnerwatch=trace,debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a terminal: a log written to a file or a journal stays plain.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(RedactingStderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A listing piped into `head` ends quietly when the reader stops, as `ls` and `grep` do,
/// instead of failing on the closed pipe. Only for the listing commands: the daemon keeps
/// running whatever happens to its standard output.
fn quiet_on_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread writes to a pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Standard error for log lines, each passed through the redaction layer before it is written
/// (a far end that echoes a token cannot put it into the log).
struct RedactingStderr;

/// One log line on its way to standard error.
struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let line = String::from_utf8_lossy(&self.0);
        let clean = crate::config::secret::redact(&line);
        let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), clean.as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::new())
    }
}

/// Loads the configuration, naming the file when it is missing.
fn load_config(path: &std::path::Path) -> anyhow::Result<crate::config::Config> {
    if !path.exists() {
        anyhow::bail!(
            "no configuration at {} — pass --config FILE, set PARTNERWATCH_CONFIG, or start from examples/partnerwatch.yaml (or try `partnerwatch demo`, which needs none)",
            path.display()
        );
    }
    Ok(crate::config::Config::load(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_run_on_their_own_thread_and_a_panic_goes_on() {
        let runtime = runtime().unwrap();
        let caller = std::thread::current().id();
        let (name, id, flavor) = runtime
            .block_on(on_sweep_thread(|| async {
                let this = std::thread::current();
                let flavor = tokio::runtime::Handle::current().runtime_flavor();
                (this.name().map(str::to_string), this.id(), flavor)
            }))
            .unwrap();
        assert_eq!(name.as_deref(), Some("partnerwatch-sweeps"));
        assert_ne!(id, caller);
        assert_eq!(flavor, tokio::runtime::RuntimeFlavor::CurrentThread);

        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(on_sweep_thread(|| async { panic!("in the sweep") }))
        }));
        let payload = panicked.expect_err("the panic reaches the caller");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"in the sweep"));
    }
}
