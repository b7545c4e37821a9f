//! Issue 14 item 8: `events`, `outbox`, `history`, `digest --preview` and `outbox --retry` work
//! while `partnerwatch run` holds the state, answered by the daemon through its local API on
//! `listen` (a token in the state folder); without `listen` they say how to get it.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A configuration with `listen`, a weekly digest, and a webhook that dead-letters at once
/// (nothing listens at `hook_port` until the test starts a server there).
fn config(
    dir: &Path,
    sim: &partnerwatch::sim::Simulator,
    listen: Option<u16>,
    hook_port: u16,
) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(
            "channels:\n",
            &format!("channels:\n  hook: {{ type: webhook, url: \"http://127.0.0.1:{hook_port}/hook\" }}\n"),
        )
        .replace("delivery:\n", "delivery:\n  max_attempts: 1\n");
    let listen = match listen {
        Some(p) => format!("listen: 127.0.0.1:{p}\n"),
        None => "listen: off\n".to_string(),
    };
    let digest =
        "digests:\n  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [inbox]\n";
    std::fs::write(&path, format!("{listen}{text}{digest}")).unwrap();
    std::fs::write(
        dir.join("rules/hook.yaml"),
        "- name: hook\n  on: referral.new\n  channels: [hook]\n  template: any\n",
    )
    .unwrap();
    path
}

fn run_cmd(config: &Path, args: &[&str]) -> (bool, String, String, Duration) {
    let started = Instant::now();
    let (ok, out, err) = common::partnerwatch(config, args);
    (ok, out, err, started.elapsed())
}

#[test]
fn read_commands_and_retry_work_while_the_daemon_holds_the_state() {
    let (rt, sim) = common::sim_runtime_now(6, 5);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let hook_port = common::free_port();
    let config = config(dir.path(), &sim, Some(port), hook_port);
    let (ok, _, err) = common::partnerwatch(&config, &["-q", "poll"]);
    assert!(ok, "{err}");

    let log = dir.path().join("run.log");
    let mut run = common::start_run(&config, &log, || common::healthz(&rt, port).is_some());
    let arrived = sim.state().add_referrals(2);
    common::wait_for("two dead letters", &log, Duration::from_secs(30), || {
        common::healthz(&rt, port).is_some_and(|(_, h)| h["outbox"]["dead"] == 2)
    });

    // The daemon file: the address and a token, for the owner only.
    let file = dir.path().join("state/daemon.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "daemon.json is readable by its owner only");
    }

    // Each command answers, from the state the daemon holds, at once (the database lock is
    // never waited for).
    let (ok, out, err, took) = run_cmd(&config, &["events", "--kind", "referral.new"]);
    assert!(ok, "events: {err}");
    for id in &arrived {
        assert!(out.contains(id.as_str()), "events lists {id}:\n{out}");
    }
    println!("events through the daemon took {took:?}");
    assert!(took < Duration::from_secs(3), "no lock wait: {took:?}");

    let (ok, out, err, _) = run_cmd(&config, &["history", &arrived[0]]);
    assert!(ok, "history: {err}");
    assert!(
        out.contains(&format!("referrals {} — 1 version(s) kept", arrived[0])),
        "{out}"
    );

    let (ok, out, err, _) = run_cmd(&config, &["outbox", "--dead"]);
    assert!(ok, "outbox: {err}");
    assert!(out.contains("0 pending, 2 dead"), "{out}");
    let dead: Vec<u64> = out
        .lines()
        .filter(|l| l.contains(" dead "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert_eq!(dead.len(), 2, "{out}");

    let preview = dir.path().join("weekly.html");
    let (ok, out, err, _) = run_cmd(
        &config,
        &["digest", "weekly", "--preview", preview.to_str().unwrap()],
    );
    assert!(ok, "digest --preview: {err}");
    assert!(out.contains("preview written to"), "{out}");
    let html = std::fs::read_to_string(&preview).unwrap();
    assert!(html.contains("<html"), "an HTML preview: {html}");

    // The hook comes up; a retried dead letter is sent by the running daemon.
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = Arc::clone(&received);
    rt.spawn(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let seen = Arc::clone(&seen);
                async move {
                    seen.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", hook_port))
            .await
            .unwrap();
        axum::serve(listener, app).await.unwrap();
    });
    let (ok, out, err, _) = run_cmd(&config, &["outbox", "--retry", &dead[0].to_string()]);
    assert!(ok, "outbox --retry: {err}");
    assert!(out.contains("is queued again"), "{out}");
    common::wait_for(
        "the retried delivery",
        &log,
        Duration::from_secs(30),
        || received.lock().unwrap().len() == 1,
    );
    let (ok, out, _, _) = run_cmd(&config, &["outbox", "--dead"]);
    assert!(ok && out.contains("0 pending, 1 dead"), "{out}");

    // Without the token the API answers nothing.
    let status = rt.block_on(async {
        reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/local/v1/command"))
            .json(&serde_json::json!({ "args": ["events"] }))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 401);

    // A clean stop removes the daemon file, and the commands read the state themselves.
    unsafe { libc::kill(run.id() as i32, libc::SIGTERM) };
    run.wait().unwrap();
    assert!(!file.exists(), "daemon.json is removed on a clean stop");
    let (ok, out, err, _) = run_cmd(&config, &["outbox", "--dead"]);
    assert!(ok && out.contains("0 pending, 1 dead"), "{out}{err}");
}

#[test]
fn a_daemon_file_left_by_a_crash_does_not_get_in_the_way() {
    let (rt, sim) = common::sim_runtime_now(3, 5);
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let config = config(dir.path(), &sim, Some(port), common::free_port());
    let log = dir.path().join("run.log");
    let mut run = common::start_run(&config, &log, || common::healthz(&rt, port).is_some());
    run.kill().unwrap(); // SIGKILL: the file stays
    run.wait().unwrap();
    assert!(dir.path().join("state/daemon.json").exists());
    let (ok, out, err, _) = run_cmd(&config, &["outbox"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("outbox: 0 pending"), "{out}");
}

#[test]
fn without_listen_a_held_state_says_how_to_read_it() {
    let (_rt, sim) = common::sim_runtime_now(3, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &sim, None, common::free_port());
    let (ok, _, err) = common::partnerwatch(&config, &["-q", "poll"]);
    assert!(ok, "{err}");
    let log = dir.path().join("run.log");
    let mut run = common::start_run(&config, &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("sweep complete")
    });
    let (ok, _, err, _) = run_cmd(&config, &["events"]);
    run.kill().unwrap();
    run.wait().unwrap();
    assert!(!ok);
    assert!(
        err.contains("holds the state") && err.contains("listen"),
        "{err}"
    );
}
