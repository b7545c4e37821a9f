//! Storage faults (issue 14 item 2): a full disk under a running daemon, a snapshot that sled
//! left half-written, a damaged database. The full disk is real: the state folder is a small
//! tmpfs that the test mounts (this needs root, as CI has; elsewhere that test says it was
//! skipped), filled by a file until writes fail with ENOSPC, then emptied.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A tmpfs mounted at a folder for the life of the value.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes a file of zeros until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 << 10];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

/// The referral ids announced in the inbox so far, one per message.
fn announced(inbox: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(inbox) else {
        return Vec::new();
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-referral_new.txt")
        })
        .filter_map(|e| {
            let text = std::fs::read_to_string(e.path()).ok()?;
            let first = text.lines().next()?;
            first.strip_prefix("referral.new ").map(str::to_string)
        })
        .collect();
    ids.sort();
    ids
}

/// More than fits in the room sled keeps in its files: the sweep must grow them.
const ARRIVALS: usize = 400;

#[test]
fn a_full_disk_fails_sweeps_cleanly_is_reported_and_the_daemon_recovers_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(&dir.path().join("state"), "32m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    let (rt, sim) = common::sim_runtime_now(30, 10);
    let config = common::write_config(dir.path(), &sim, "");
    let port = common::free_port();
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("listen: 127.0.0.1:{port}\n{text}")).unwrap();
    let (ok, _, err) = common::partnerwatch(&config, &["-q", "poll"]);
    assert!(ok, "baseline: {err}");

    let log = dir.path().join("run.log");
    let mut run = common::start_run(&config, &log, || {
        common::healthz(&rt, port)
            .is_some_and(|(_, h)| !h["sources"]["referrals"]["last_complete_sweep"].is_null())
    });

    // The disk fills up; then referrals arrive, which the daemon must write to announce.
    let filler = dir.path().join("state/filler");
    fill(&filler);
    let arrived = sim.state().add_referrals(ARRIVALS);
    common::wait_for(
        "/healthz to report the storage failure",
        &log,
        Duration::from_secs(30),
        || {
            common::healthz(&rt, port)
                .is_some_and(|(code, h)| code == 503 && h["storage"]["ok"] == false)
        },
    );
    let (_, health) = common::healthz(&rt, port).unwrap();
    assert_eq!(health["status"], "failing");
    let error = health["storage"]["error"].as_str().unwrap().to_lowercase();
    assert!(
        error.contains("space") || error.contains("closed") || error.contains("storage"),
        "the error says what failed: {error}"
    );
    // Nothing of a sweep that could not be written goes out.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(announced(&dir.path().join("inbox")), Vec::<String>::new());
    assert!(
        run.try_wait().unwrap().is_none(),
        "the daemon keeps running"
    );

    // Space comes back: the daemon reopens its database by itself and announces each arrival once.
    std::fs::remove_file(&filler).unwrap();
    let mut expected = arrived.clone();
    expected.sort();
    common::wait_for(
        "the arrivals after space returned",
        &log,
        Duration::from_secs(40),
        || announced(&dir.path().join("inbox")).len() >= expected.len(),
    );
    common::wait_for(
        "/healthz to say the storage works",
        &log,
        Duration::from_secs(20),
        || {
            common::healthz(&rt, port)
                .is_some_and(|(code, h)| code == 200 && h["storage"]["ok"] == true)
        },
    );
    std::thread::sleep(Duration::from_secs(3)); // a few more sweeps and delivery passes
    assert_eq!(
        announced(&dir.path().join("inbox")),
        expected,
        "each arrival announced once"
    );
    run.kill().unwrap();
    run.wait().unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(!log.contains("panicked"), "{log}");
    assert!(log.contains("cannot write the state database"), "{log}");
    assert!(log.contains("can be written again"), "{log}");

    // What was written after recovery is on disk: a new process reads it back.
    let (ok, out, err) = common::partnerwatch(&config, &["events", "--kind", "referral.new"]);
    assert!(ok, "{err}");
    for id in &arrived {
        assert_eq!(
            out.matches(id.as_str()).count(),
            1,
            "{id} once in the event log:\n{out}"
        );
    }
}

/// A state folder after the baseline of `referrals` referrals, and its configuration.
fn swept(
    referrals: usize,
) -> (
    tokio::runtime::Runtime,
    partnerwatch::sim::Simulator,
    tempfile::TempDir,
    std::path::PathBuf,
) {
    let (rt, sim) = common::sim_runtime_now(referrals, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let (ok, _, err) = common::partnerwatch(&config, &["-q", "poll"]);
    assert!(ok, "{err}");
    (rt, sim, dir, config)
}

#[test]
fn a_half_written_snapshot_does_not_block_opening() {
    let (_rt, _sim, dir, config) = swept(12);
    // What sled leaves when the disk fills (or the power goes) while it writes a snapshot:
    // an empty file that sorts after every complete snapshot.
    let db = dir.path().join("state/db");
    std::fs::write(db.join("snap.FFFFFFFFFFFFFFFF.generating"), b"").unwrap();
    let (ok, _, err) = common::partnerwatch(&config, &["events", "--kind", "referral.new"]);
    assert!(ok, "opens despite the half-written snapshot: {err}");
    assert!(!db.join("snap.FFFFFFFFFFFFFFFF.generating").exists());
    let store = partnerwatch::store::Store::open(&dir.path().join("state")).unwrap();
    assert_eq!(
        common::stored_ids(&store, "referrals").len(),
        12,
        "nothing was lost"
    );
}

#[test]
fn a_damaged_database_is_refused_with_what_to_do_and_left_as_it_is() {
    let (_rt, _sim, dir, config) = swept(12);
    let conf = dir.path().join("state/db/conf");
    let mut bytes = std::fs::read(&conf).unwrap();
    for b in bytes.iter_mut().take(8) {
        *b ^= 0xff;
    }
    std::fs::write(&conf, &bytes).unwrap();
    let before = common::files(&dir.path().join("state"));
    let log_before = std::fs::read(dir.path().join("state/db/db")).unwrap();

    for args in [&["-q", "poll"][..], &["events"][..]] {
        let (ok, _, err) = common::partnerwatch(&config, args);
        assert!(!ok, "{args:?} refuses a damaged database");
        assert!(err.contains("is damaged"), "{err}");
        assert!(
            err.contains("backup") && err.contains("move it aside"),
            "says what to do: {err}"
        );
    }
    assert_eq!(
        common::files(&dir.path().join("state")),
        before,
        "no file added or removed"
    );
    assert_eq!(
        std::fs::read(dir.path().join("state/db/db")).unwrap(),
        log_before,
        "the data is left as it was"
    );
}
