//! The daemon's local API. `events`, `outbox`, `history` and `digest` read the state database,
//! which a running `partnerwatch run` holds (sled lets one process open it). When the daemon
//! serves `listen`, it answers these commands itself: it writes its address and a fresh token
//! to `STATE_DIR/daemon.json` (readable by the owner only, removed on a clean stop), and a
//! command that finds the file sends its arguments there and prints the answer: the same code
//! on the same data, so the output is what the command prints when the daemon is stopped.
//! Without `listen` the command says how to get it. Must never: answer without the token, or
//! run anything but these four commands.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::health::LocalApi;
use crate::pipeline::Pipeline;
use crate::store::StoreError;

use super::{digest, inspect, outbox, Cli, Command};

/// The file in the state folder that tells commands where the running daemon answers.
pub const DAEMON_FILE: &str = "daemon.json";

/// The route of the local API on the `listen` address.
pub const ROUTE: &str = "/local/v1/command";

#[derive(Debug, Serialize, Deserialize)]
struct DaemonFile {
    pid: u32,
    addr: String,
    token: String,
}

/// What a command prints and the files it writes, run here or by the daemon.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Output {
    pub text: String,
    /// Files to write on the side of the person who asked (`digest --preview FILE`).
    pub files: Vec<(PathBuf, String)>,
    /// The exit status.
    pub code: u8,
}

impl Output {
    pub fn text(text: String) -> Output {
        Output {
            text,
            ..Output::default()
        }
    }

    /// Writes the files, prints the text, and gives the exit status.
    pub fn emit(self) -> anyhow::Result<ExitCode> {
        use std::io::Write;
        for (path, content) in &self.files {
            std::fs::write(path, content)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        }
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(self.text.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
            _ => {}
        }
        Ok(ExitCode::from(self.code))
    }
}

/// Runs a command that reads the state database: by the running daemon when it answers,
/// here otherwise.
pub async fn held<F, Fut>(config_path: &Path, here: F) -> anyhow::Result<ExitCode>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<Output>>,
{
    let args: Vec<String> = std::env::args().skip(1).collect();
    held_with(config_path, args, here).await?.emit()
}

/// [`held`] for the command `args` (as typed after `partnerwatch`), returning its output.
pub async fn held_with<F, Fut>(
    config_path: &Path,
    args: Vec<String>,
    here: F,
) -> anyhow::Result<Output>
where
    F: FnOnce(Config) -> Fut,
    Fut: Future<Output = anyhow::Result<Output>>,
{
    let config = super::load_config(config_path)?;
    if let Some(out) = ask_daemon(&config.state_dir, args).await? {
        return Ok(out);
    }
    match here(config).await {
        Ok(out) => Ok(out),
        Err(e) if is_locked(&e) => Err(e.context(
            "a running `partnerwatch run` holds the state, and it answers `events`, `outbox`, `history` and `digest` itself only while it serves `listen` (on by default at 127.0.0.1:9464; this one has `listen: off`, or its address was taken — see its log): give it a `listen` address and restart it, or stop it to run this command",
        )),
        Err(e) => Err(e),
    }
}

fn is_locked(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<StoreError>(),
            Some(StoreError::Locked { .. })
        )
    })
}

/// Sends this process's arguments to the daemon named in the state folder. `None` when there
/// is no daemon file, or nothing answers at its address (a daemon that crashed left it).
async fn ask_daemon(state_dir: &Path, args: Vec<String>) -> anyhow::Result<Option<Output>> {
    let Ok(bytes) = std::fs::read(state_dir.join(DAEMON_FILE)) else {
        return Ok(None);
    };
    let Ok(daemon) = serde_json::from_slice::<DaemonFile>(&bytes) else {
        return Ok(None);
    };
    let answer = reqwest::Client::new()
        .post(format!("http://{}{ROUTE}", daemon.addr))
        .bearer_auth(&daemon.token)
        .json(&serde_json::json!({ "args": args }))
        .timeout(std::time::Duration::from_secs(120))
        .send()
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) if e.is_connect() => return Ok(None),
        Err(e) => anyhow::bail!(
            "the running daemon (pid {}) did not answer: {e}",
            daemon.pid
        ),
    };
    let status = answer.status();
    // Another process at a stale file's address: not our daemon.
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    let body: serde_json::Value = answer.json().await?;
    if !status.is_success() {
        anyhow::bail!("{}", body["error"].as_str().unwrap_or("the daemon refused"));
    }
    tracing::debug!(pid = daemon.pid, "answered by the running daemon");
    Ok(Some(serde_json::from_value(body)?))
}

/// Tells commands where this daemon answers: writes the daemon file with a fresh token,
/// readable by the owner only. The value removes the file when dropped (a clean stop).
pub fn announce(state_dir: &Path, addr: &str, pipeline: Arc<Pipeline>) -> (LocalApi, Announced) {
    use rand::Rng;
    let token: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    let file = state_dir.join(DAEMON_FILE);
    let daemon = DaemonFile {
        pid: std::process::id(),
        addr: addr.to_string(),
        token: token.clone(),
    };
    if let Err(e) = write_private(&file, &serde_json::to_vec(&daemon).expect("serializes")) {
        tracing::warn!(file = %file.display(), error = %e, "cannot write the daemon file; `events`, `outbox`, `history` and `digest` cannot reach this daemon");
    }
    let api = LocalApi {
        token,
        run: Arc::new(move |args| {
            let pipeline = Arc::clone(&pipeline);
            Box::pin(async move { answer(&pipeline, args).await })
        }),
    };
    (api, Announced(file))
}

/// Removes the daemon file when the daemon stops.
#[derive(Debug)]
pub struct Announced(PathBuf);

impl Drop for Announced {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&tmp)?, bytes)?;
    std::fs::rename(tmp, path)
}

/// One command run by the daemon on its own database, with the arguments as typed.
async fn answer(pipeline: &Pipeline, args: Vec<String>) -> Result<serde_json::Value, String> {
    let cli = <Cli as clap::Parser>::try_parse_from(
        std::iter::once("partnerwatch".to_string()).chain(args),
    )
    .map_err(|e| e.to_string())?;
    let out = match &cli.command {
        Command::Events(a) => inspect::events(&pipeline.store, a),
        Command::History(a) => inspect::history(&pipeline.store, a),
        Command::Outbox(a) => outbox::outbox(&pipeline.store, a),
        Command::Digest(a) => digest::digest(pipeline, a, true).await,
        Command::Referral(a) => super::referral::referral(pipeline, a).await,
        _ => {
            return Err(
                "the daemon answers only events, outbox, history, digest and referral".into(),
            )
        }
    };
    let out = out.map_err(|e| format!("{e:#}"))?;
    serde_json::to_value(out).map_err(|e| e.to_string())
}
