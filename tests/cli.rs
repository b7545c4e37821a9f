//! The `partnerwatch` binary as a user runs it: real processes, a real state folder.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::cargo::CommandCargoExt;

fn partnerwatch() -> Command {
    let mut cmd = Command::cargo_bin("partnerwatch").unwrap();
    cmd.env_remove("PARTNERWATCH_CONFIG").env_remove("RUST_LOG");
    cmd
}

fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A simulator on its own runtime at the system time, so the test thread can run processes
/// against it.
fn sim_runtime(
    referrals: usize,
    page_size: usize,
) -> (tokio::runtime::Runtime, partnerwatch::sim::Simulator) {
    common::sim_runtime_now(referrals, page_size)
}

#[test]
fn restart_on_the_same_state_reannounces_nothing() {
    let (_rt, sim) = sim_runtime(45, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let inbox = dir.path().join("inbox");
    let poll = || run(partnerwatch().arg("--config").arg(&config).arg("poll"));

    let (ok, out, err) = poll();
    assert!(ok, "{out}{err}");
    assert!(out.contains("baseline"), "{out}");
    let baseline_files = common::files(&inbox).len();
    assert!(
        !out.contains("referral.new"),
        "the baseline announces no referral as new: {out}"
    );

    let id = {
        let mut s = sim.state();
        s.add_referrals(2);
        let id = s.referrals()[0]["id"].as_str().unwrap().to_string();
        s.patch_referral(&id, &serde_json::json!({"details": {"notes": "new notes\nwith <b>HTML</b> & \"quotes\" 🎉"}}));
        id
    };
    let (ok, out, err) = poll();
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("events: 2 referral.new, 1 referral.changed\n"),
        "{out}"
    );
    assert!(out.contains("delivered 3 message(s)"), "{out}");
    let after_change = common::files(&inbox);
    assert_eq!(after_change.len(), baseline_files + 3);

    // New processes on the same state folder: nothing is announced twice.
    for _ in 0..2 {
        let (ok, out, err) = poll();
        assert!(ok, "{out}{err}");
        assert!(out.contains("events: none"), "{out}");
        assert!(out.contains("delivered 0 message(s)"), "{out}");
    }
    assert_eq!(common::files(&inbox), after_change);
    let changed = std::fs::read_to_string(
        inbox.join(after_change.iter().find(|f| f.contains("changed")).unwrap()),
    )
    .unwrap();
    assert!(
        changed.contains("/details/notes=new notes\nwith <b>HTML</b> & \"quotes\" 🎉"),
        "{changed}"
    );
    // The record's history shows both versions and the notes diffed line by line.
    let (ok, out, err) = run(partnerwatch()
        .arg("--config")
        .arg(&config)
        .args(["history", &id]));
    assert!(ok, "{err}");
    assert!(out.contains("2 version(s) kept"), "{out}");
    assert!(
        out.contains("── version 1 — replaced") && out.contains("── current"),
        "{out}"
    );
    assert!(
        out.contains("    + new notes\n    + with <b>HTML</b> & \"quotes\" 🎉"),
        "{out}"
    );
    let (ok, _, err) = run(partnerwatch()
        .arg("--config")
        .arg(&config)
        .args(["history", "no-such-id"]));
    assert!(
        !ok && err.contains("no record with id \"no-such-id\""),
        "{err}"
    );

    // The event log lists what was announced, filtered by kind.
    let (ok, out, _) =
        run(partnerwatch()
            .arg("--config")
            .arg(&config)
            .args(["events", "--kind", "referral.new"]));
    assert!(ok);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().all(|l| l.contains("referral.new")), "{out}");
    let (ok, out, _) = run(partnerwatch().arg("--config").arg(&config).args([
        "events",
        "--json",
        "--kind",
        "referral.changed",
    ]));
    assert!(ok);
    let event: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(event["entity_id"], id.as_str());
    assert_eq!(
        event["changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["path"] == "/details/notes")
            .count(),
        1
    );
}

#[test]
fn failed_sweep_exits_nonzero_and_changes_nothing() {
    let (_rt, sim) = sim_runtime(30, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let (ok, ..) = run(partnerwatch().arg("--config").arg(&config).arg("poll"));
    assert!(ok);
    {
        let mut s = sim.state();
        let id = s.referrals()[0]["id"].as_str().unwrap().to_string();
        s.remove_referral(&id);
        s.add_fault(partnerwatch::sim::Fault {
            page: Some(2),
            action: partnerwatch::sim::FaultAction::Malformed,
            times: 1,
        });
    }
    let (ok, out, err) = run(partnerwatch().arg("--config").arg(&config).arg("poll"));
    assert!(!ok, "{out}");
    assert!(err.contains("referrals page 2"), "{err}");
    let inbox = common::files(&dir.path().join("inbox"));
    assert!(
        inbox.iter().all(|f| !f.contains("removed")),
        "no false removal was sent: {inbox:?}"
    );

    let (ok, out, _) = run(partnerwatch().arg("--config").arg(&config).arg("poll"));
    assert!(ok);
    assert!(out.contains("events: 1 referral.removed\n"), "{out}");
}

/// A simulated day (about four real seconds) starts on a Monday after 08:00: the weekly digest
/// of the week before goes to the inbox, with the baseline's referrals and tenants in it.
#[test]
fn demo_sends_the_weekly_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(partnerwatch()
        .args(["demo", "--days", "1", "--dir"])
        .arg(dir.path()));
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("the weekly digest goes out"), "{out}");
    let inbox = dir.path().join("inbox");
    let digests: Vec<String> = common::files(&inbox)
        .into_iter()
        .filter(|f| f.ends_with("digest.txt"))
        .collect();
    assert_eq!(digests.len(), 1, "one Monday, one digest");
    let text = std::fs::read_to_string(inbox.join(&digests[0])).unwrap();
    assert!(
        text.starts_with("Partner digest: week of 16 Nov 2026"),
        "{text}"
    );
    assert!(text.contains("COPILOT ADOPTION (12 tenants)"), "{text}");
}

#[test]
fn demo_once_runs_the_whole_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(partnerwatch()
        .args(["demo", "--once", "--dir"])
        .arg(dir.path()));
    assert!(ok, "{out}\n{err}");
    for kind in [
        "referral.new",
        "referral.status_changed",
        "referral.removed",
        "referral.acted",
    ] {
        assert!(
            out.contains(&format!("── {kind} ·")),
            "{kind} missing from:\n{out}"
        );
    }
    assert!(out.contains("baseline"), "{out}");
    let inbox = common::files(&dir.path().join("inbox"));
    for kind in [
        "referral_new",
        "referral_status_changed",
        "referral_removed",
    ] {
        assert!(
            inbox.iter().any(|f| f.ends_with(&format!("{kind}.txt"))),
            "no {kind} file in {inbox:?}"
        );
    } // The accept the demo makes through partnerwatch is announced once, not again by a sweep.
    assert_eq!(out.matches("── referral.acted ·").count(), 1, "{out}");
}

#[test]
fn check_accepts_the_example_and_names_file_line_column_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("rules")).unwrap();
    std::fs::write(
        dir.path().join("rules/r.yaml"),
        "- name: a\n  on: referral.new\n  channels: [log]\n",
    )
    .unwrap();
    let config = dir.path().join("pw.yaml");
    std::fs::write(
        &config,
        format!(
            "auth:\n  static_token: ${{PW_TEST_TOKEN}}\nsources:\n  referrals: {{ every: 5m }}\nchannels:\n  log: {{ type: console }}\nrules: ./rules\ntemplates: {}/templates\n",
            common::REPO
        ),
    )
    .unwrap();

    let (ok, out, err) = run(partnerwatch()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .env("PW_TEST_TOKEN", "tok-s3cret-123"));
    assert!(ok, "{out}{err}");
    assert!(out.contains("OK"), "{out}");
    assert!(!out.contains("tok-s3cret-123") && !err.contains("tok-s3cret-123"));

    let (ok, _, err) = run(partnerwatch()
        .arg("--config")
        .arg(&config)
        .arg("check")
        .env_remove("PW_TEST_TOKEN"));
    assert!(!ok);
    assert!(
        err.contains("pw.yaml:2:") && err.contains("PW_TEST_TOKEN is not set"),
        "{err}"
    );

    let check_rule = |rule: &str| {
        std::fs::write(dir.path().join("rules/r.yaml"), rule).unwrap();
        run(partnerwatch()
            .arg("--config")
            .arg(&config)
            .arg("check")
            .env("PW_TEST_TOKEN", "x"))
    };
    let (ok, _, err) = check_rule("- name: a\n  on: referral.new\n  channels: [log, sales-team]\n");
    assert!(!ok);
    assert!(
        err.contains("r.yaml:3:") && err.contains("unknown channel \"sales-team\" (known: log)"),
        "{err}"
    );

    let (ok, _, err) = check_rule("- name: a\n  on: referal.new\n  channels: [log]\n");
    assert!(!ok);
    assert!(
        err.contains("r.yaml:2:") && err.contains("matches no event kind"),
        "{err}"
    );

    let (ok, _, err) =
        check_rule("- name: a\n  on: referral.new\n  channels: [log]\n  when: recrod.x > 1\n");
    assert!(!ok);
    assert!(
        err.contains("r.yaml:4:") && err.contains("unknown variable recrod"),
        "{err}"
    );

    let (ok, _, err) =
        check_rule("- name: a\n  on: referral.new\n  channels: [log]\n  quiet_hours: late\n");
    assert!(!ok);
    assert!(
        err.contains("r.yaml:4:") && err.contains("quiet_hours \"late\" is not a window"),
        "{err}"
    );
}

#[test]
fn check_teaches_what_is_wrong_in_a_template_or_a_condition() {
    let dir = tempfile::tempdir().unwrap();
    let (rules, templates) = (dir.path().join("rules"), dir.path().join("templates"));
    std::fs::create_dir_all(&rules).unwrap();
    std::fs::create_dir_all(&templates).unwrap();
    let config = dir.path().join("pw.yaml");
    std::fs::write(
        &config,
        "auth:\n  static_token: x\nsources:\n  referrals: { every: 5m }\nchannels:\n  log: { type: console }\n  m: { type: email, smtp_url: \"smtp://127.0.0.1:2525\", from: a@b.c, to: [x@y.z] }\nrules: ./rules\ntemplates: ./templates\n",
    )
    .unwrap();
    let check = |rule: &str, template: &str| {
        std::fs::write(rules.join("r.yaml"), rule).unwrap();
        std::fs::write(templates.join("referral_new.text.hbs"), template).unwrap();
        run(partnerwatch().arg("--config").arg(&config).arg("check"))
    };
    let rule = "- name: a\n  on: referral.new\n  channels: [log, m]\n";

    // A misspelt field: the file that exists, its line, the nearest real field, once.
    let (ok, _, err) = check(rule, "New\nfor {{record.customerProfle.name}}\n");
    assert!(!ok);
    assert!(err.contains("referral_new.text.hbs:2:5:"), "{err}");
    assert!(
        err.contains("did you mean `record.customerProfile.name`"),
        "{err}"
    );
    assert_eq!(
        err.matches("error:").count(),
        1,
        "one error, not one per channel: {err}"
    );
    assert!(err.contains("(referral.new → log, m)"), "{err}");
    assert!(!err.contains("html.hbs") && !err.contains("Some("), "{err}");

    // A helper that does not exist: the nearest one and the list.
    let (ok, _, err) = check(rule, "New {{datee record.createdDateTime}}\n");
    assert!(!ok);
    assert!(
        err.contains("did you mean `date`") && err.contains("money"),
        "{err}"
    );

    // A syntax error: what to close, where, no grammar rule names.
    let (ok, _, err) = check(rule, "New\n{{#if record.name}}x\n");
    assert!(!ok);
    assert!(err.contains("referral_new.text.hbs:2:1:"), "{err}");
    assert!(err.contains("add `{{/if}}`"), "{err}");
    assert!(!err.contains("expression"), "{err}");

    // A CEL type error passes compilation but would never match: check says so.
    let typed = "- name: a\n  on: referral.new\n  channels: [log]\n  when: record.details.dealValue > \"50000\"\n";
    let (ok, _, err) = check(typed, "New\n");
    assert!(!ok, "a condition that can never be evaluated passes check");
    assert!(
        err.contains("r.yaml:4:9:") && err.contains("never match"),
        "{err}"
    );
    assert!(err.contains("50000, not \"50000\""), "{err}");
    let fine = "- name: a\n  on: referral.new\n  channels: [log]\n  when: record.details.dealValue > 50000\n";
    let (ok, out, err) = check(fine, "New {{record.customerProfile.name}}\n");
    assert!(ok, "{out}{err}");
}

#[test]
fn example_configuration_checks() {
    let (ok, out, err) = run(partnerwatch()
        .arg("--config")
        .arg(format!("{}/examples/partnerwatch.yaml", common::REPO))
        .arg("check")
        .env("PARTNERWATCH_TENANT_ID", "contoso.onmicrosoft.com")
        .env(
            "PARTNERWATCH_CLIENT_ID",
            "11111111-2222-3333-4444-555555555555",
        ));
    assert!(ok, "{out}{err}");
}

#[test]
fn run_polls_on_schedule_and_stops_cleanly_on_sigterm() {
    let (_rt, sim) = sim_runtime(20, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "state_dir: ./state\n",
        &format!("state_dir: ./state\nlisten: 127.0.0.1:{port}\n"),
    );
    std::fs::write(&config, text).unwrap();
    let mut child = partnerwatch()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    // The first poll is the baseline; add news and wait for the next scheduled poll to send it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.state().stats.pages_served < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    sim.state().add_referrals(1);
    let inbox = dir.path().join("inbox");
    let arrivals = || {
        common::files(&inbox)
            .iter()
            .filter(|f| f.ends_with("referral_new.txt"))
            .count()
    };
    while arrivals() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(arrivals(), 1, "the daemon announced the new referral");

    // The daemon reports on itself, with counts only.
    let get = |path: &str| {
        let url = format!("http://127.0.0.1:{port}{path}");
        _rt.block_on(async move { reqwest::get(url).await.unwrap().text().await.unwrap() })
    };
    let health: serde_json::Value = serde_json::from_str(&get("/healthz")).unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(
        health["sources"]["referrals"]["failures_in_a_row"], 0,
        "{health}"
    );
    let metrics = get("/metrics");
    assert!(
        metrics.contains("partnerwatch_sweeps_total{source=\"referrals\",result=\"complete\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("partnerwatch_events_total{kind=\"referral.new\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("partnerwatch_outbox{status=\"dead\"} 0"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon did not stop after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(exit.success(), "{stderr}");
    assert!(stderr.contains("stopped cleanly"), "{stderr}");
}

#[test]
fn rules_test_render_outbox_and_channels_test() {
    let (_rt, sim) = sim_runtime(10, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    // A second channel that can never be reached (nothing listens on port 9 here), tried once.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "channels:\n",
            "channels:\n  down: { type: webhook, url: \"http://127.0.0.1:9/hook\" }\n",
        )
        .replace(
            "delivery:\n  backoff: 10ms\n",
            "delivery:\n  backoff: 10ms\n  max_attempts: 1\n",
        );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: everything\n  on: referral.*\n  channels: [inbox, down]\n  template: any\n",
    )
    .unwrap();
    let pw = |args: &[&str]| run(partnerwatch().arg("--config").arg(&config).args(args));

    assert!(pw(&["poll"]).0);
    sim.state().add_referrals(1);
    let (ok, out, err) = pw(&["poll"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("delivered 1 message(s), 1 dead-lettered"),
        "{out}"
    );

    // The dead delivery is listed, and can be queued again.
    let (ok, out, _) = pw(&["outbox", "--dead"]);
    assert!(ok);
    assert!(out.contains("outbox: 0 pending, 1 dead, 1 sent"), "{out}");
    let dead_line = out.lines().find(|l| l.contains("dead ")).unwrap();
    assert!(
        dead_line.contains("referral.new") && dead_line.contains("down"),
        "{out}"
    );
    let id = dead_line.split_whitespace().next().unwrap().to_string();
    let (ok, out, _) = pw(&["outbox", "--retry", &id]);
    assert!(ok && out.contains("is queued again"), "{out}");
    let (_, out, _) = pw(&["outbox", "--pending"]);
    assert!(out.contains("outbox: 1 pending, 0 dead, 1 sent"), "{out}");
    let (ok, _, err) = pw(&["outbox", "--retry", "999999"]);
    assert!(!ok && err.contains("no delivery 999999"), "{err}");

    // rules test and render on a stored event.
    let (_, out, _) = pw(&["events", "--json", "--kind", "referral.new"]);
    let event_file = dir.path().join("event.json");
    std::fs::write(&event_file, out.lines().next().unwrap()).unwrap();
    let ev = event_file.to_str().unwrap();
    let (ok, out, err) = pw(&["rules", "test", "everything", "--event", ev]);
    assert!(ok, "{err}");
    assert!(
        out.contains("matches this referral.new event")
            && out.contains("── inbox (inbox, template any)"),
        "{out}"
    );
    let (ok, _, err) = pw(&["rules", "test", "nope", "--event", ev]);
    assert!(
        !ok && err.contains("no rule named \"nope\" (known: everything)"),
        "{err}"
    );
    let (ok, out, err) = pw(&["render", "any", "--event", ev, "--channel", "teams"]);
    assert!(ok, "{err}");
    let card: serde_json::Value = serde_json::from_str(&out).expect("teams rendering is a card");
    assert_eq!(card["type"], "AdaptiveCard");

    // channels test sends for real.
    let (ok, out, _) = pw(&["channels", "test", "inbox"]);
    assert!(ok && out.starts_with("inbox: delivered (wrote "), "{out}");
    let (ok, out, _) = pw(&["channels", "test", "down"]);
    assert!(
        !ok && out.starts_with("down: not delivered, worth retrying"),
        "{out}"
    );
}

/// Every kind of mistake in what a user writes names its file, line and column — checked
/// here to the column, one case of each kind.
#[test]
fn every_kind_of_configuration_mistake_names_file_line_and_column() {
    let base = "sources:\n  referrals:\n    base_url: http://127.0.0.1:9/v1.0\nauth:\n  static_token: t\nchannels:\n  log: { type: console }\nrules: ./rules\ntemplates: ./templates\n";
    let rule = "- name: a\n  on: referral.new\n  channels: [log]\n";
    // (what, configuration, rule file, a template to break, file, line, column, message part)
    type Case<'a> = (
        &'a str,
        String,
        &'a str,
        Option<&'a str>,
        &'a str,
        u32,
        u32,
        &'a str,
    );
    let cases: &[Case] = &[
        (
            "YAML syntax",
            format!("{base}  bad: [\n"),
            rule,
            None,
            "pw.yaml",
            10,
            6,
            "mapping values",
        ),
        (
            "unknown key",
            format!("{base}bogus: 1\n"),
            rule,
            None,
            "pw.yaml",
            10,
            1,
            "unknown field `bogus`",
        ),
        (
            "bad value",
            base.replace("base_url: http://127.0.0.1:9/v1.0", "base_url: \"0\""),
            rule,
            None,
            "pw.yaml",
            3,
            5,
            "is not a URL",
        ),
        (
            "bad channel value",
            base.replace(
                "{ type: console }",
                "{ type: telegram, bot_token: x, chat_id: abc }",
            ),
            rule,
            None,
            "pw.yaml",
            7,
            8,
            "chat_id \"abc\"",
        ),
        (
            "missing folder",
            base.replace("templates: ./templates", "templates: ./templaes"),
            rule,
            None,
            "pw.yaml",
            9,
            12,
            "cannot read",
        ),
        (
            "no credentials",
            base.replace("static_token: t", "tenant_id: x"),
            rule,
            None,
            "pw.yaml",
            5,
            3,
            "no credentials",
        ),
        (
            "duration",
            base.replace(
                "channels:\n",
                "delivery:\n  backoff: 5 minutes\nchannels:\n",
            ),
            rule,
            None,
            "pw.yaml",
            7,
            12,
            "unknown unit",
        ),
        (
            "unknown reference",
            base.to_string(),
            "- name: a\n  on: referral.new\n  channels: [lgo]\n",
            None,
            "r.yaml",
            3,
            14,
            "unknown channel \"lgo\"",
        ),
        (
            "CEL",
            base.to_string(),
            "- name: a\n  on: referral.new\n  when: \"record.x +\"\n  channels: [log]\n",
            None,
            "r.yaml",
            3,
            9,
            "`when`",
        ),
        (
            "cron",
            format!(
                "{base}digests:\n  - name: w\n    schedule: \"every day\"\n    channels: [log]\n"
            ),
            rule,
            None,
            "pw.yaml",
            12,
            15,
            "not a cron schedule",
        ),
        (
            "template",
            base.to_string(),
            rule,
            Some("{{#if x}}oops"),
            "referral_new.text.hbs",
            1,
            1,
            "`{{#if}}` is never closed: add `{{/if}}`",
        ),
    ];
    for (what, config, rules, template, file, line, column, part) in cases {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("rules")).unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(dir.path().join("pw.yaml"), config).unwrap();
        std::fs::write(dir.path().join("rules/r.yaml"), rules).unwrap();
        std::fs::write(
            dir.path().join("templates/referral_new.text.hbs"),
            template.unwrap_or("New referral {{entity_id}}\n"),
        )
        .unwrap();
        let (ok, out, err) = run(partnerwatch()
            .current_dir(dir.path())
            .args(["--config", "pw.yaml", "check"]));
        assert!(!ok, "{what}: check passed: {out}");
        let first = err.lines().next().unwrap_or_default();
        let located = first
            .strip_prefix("error: ")
            .and_then(|rest| rest.split_once(&format!(":{line}:{column}: ")));
        assert!(
            located.is_some_and(|(path, message)| path.ends_with(file) && message.contains(part)),
            "{what}: expected {file}:{line}:{column}: …{part}…, got: {first}"
        );
    }
}

#[test]
fn a_listing_piped_into_a_reader_that_stops_ends_quietly() {
    let (_rt, sim) = sim_runtime(20, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    assert!(run(partnerwatch().arg("--config").arg(&config).arg("poll")).0);
    sim.state().add_referrals(5);
    assert!(run(partnerwatch().arg("--config").arg(&config).arg("poll")).0);
    for listing in [&["outbox"][..], &["events"]] {
        // The reader is gone before the first line is written (`… | head -0`).
        let mut child = partnerwatch()
            .arg("--config")
            .arg(&config)
            .args(listing)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{listing:?}: {stderr}");
        assert_ne!(out.status.code(), Some(101), "{listing:?}: {stderr}");
    }
}

/// Guarantee 9: a channel whose far end never answers delays only itself. A real `run`
/// delivers to a webhook that hangs and to one that answers; the answering one keeps getting
/// its messages, and the sweeps keep their schedule, while every send to the other waits out
/// its 30-second timeout.
#[test]
fn a_webhook_that_never_answers_holds_back_neither_the_other_channel_nor_the_sweeps() {
    use std::sync::{Arc, Mutex};
    let (rt, sim) = sim_runtime(5, 10);
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = {
        let received = Arc::clone(&received);
        rt.block_on(async move {
            let app = axum::Router::new()
                .route(
                    "/hang",
                    axum::routing::post(|| async {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                        "late"
                    }),
                )
                .route(
                    "/ok",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let received = Arc::clone(&received);
                        async move {
                            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            let id = v["event"]["entity_id"].as_str().unwrap_or("").to_string();
                            received.lock().unwrap().push(id);
                            "ok"
                        }
                    }),
                );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            format!("http://{addr}")
        })
    };
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "channels:\n",
            &format!("channels:\n  stuck: {{ type: webhook, url: \"{sink}/hang\" }}\n  fine: {{ type: webhook, url: \"{sink}/ok\" }}\n"),
        )
        .replace("state_dir: ./state\n", "state_dir: ./state\nlisten: off\n");
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: arrivals\n  on: referral.new\n  channels: [stuck, fine]\n  template: any\n",
    )
    .unwrap();
    let mut child = partnerwatch()
        .arg("--config")
        .arg(&config)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let wait_for = |what: &str, done: &dyn Fn() -> bool, within: Duration| {
        let deadline = Instant::now() + within;
        while !done() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(done(), "{what} within {within:?}");
    };
    let pages = || sim.state().stats.pages_served;
    wait_for("the baseline", &|| pages() >= 1, Duration::from_secs(20));
    // Three arrivals, one after the other: the stuck channel hangs on the first for 30 s.
    for n in 1..=3 {
        let id = sim.state().add_referrals(1).remove(0);
        wait_for(
            &format!("arrival {n} at the answering channel"),
            &|| received.lock().unwrap().contains(&id),
            Duration::from_secs(12),
        );
    }
    // The sweeps (every second) went on meanwhile.
    let before = pages();
    wait_for(
        "two more sweeps",
        &|| pages() >= before + 2,
        Duration::from_secs(10),
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Issue 14 item 6: a sweep reads at most `http.sweep_max_pages` pages and
/// `http.sweep_max_bytes` bytes; past either it fails with the key to raise, and nothing of
/// it is kept (an API that hands out fresh next links forever cannot keep a sweep going).
#[test]
fn a_sweep_past_its_page_or_byte_cap_fails_with_the_key_to_raise_and_keeps_nothing() {
    let (_rt, sim) = sim_runtime(50, 5); // ten pages
    for (cap, says) in [
        ("sweep_max_pages: 3", "past 3 pages (http.sweep_max_pages)"),
        (
            "sweep_max_bytes: 4000",
            "more than http.sweep_max_bytes (4000)",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = common::write_config(dir.path(), &sim, "");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(
            &config,
            text.replace("http:\n", &format!("http:\n  {cap}\n")),
        )
        .unwrap();
        let (ok, out, err) = common::partnerwatch(&config, &["poll"]);
        assert!(!ok, "{cap}: {out}");
        assert!(err.contains(says), "{cap}: {err}");
        let store = partnerwatch::store::Store::open(&dir.path().join("state")).unwrap();
        assert!(
            common::stored_ids(&store, "referrals").is_empty(),
            "{cap}: nothing of the sweep is kept"
        );
        assert_eq!(store.baseline_at("referrals").unwrap(), None);
        drop(store);
        // The same source within the default caps sweeps all fifty.
        std::fs::write(&config, &text).unwrap();
        let (ok, _, err) = common::partnerwatch(&config, &["-q", "poll"]);
        assert!(ok, "{err}");
        let store = partnerwatch::store::Store::open(&dir.path().join("state")).unwrap();
        assert_eq!(common::stored_ids(&store, "referrals").len(), 50);
    }
}

/// A log that goes to a file or a pipe carries no terminal colour codes.
#[test]
fn a_log_written_to_a_pipe_has_no_colour_codes() {
    let (_rt, sim) = sim_runtime(3, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let (ok, _, err) = common::partnerwatch(&config, &["poll"]);
    assert!(ok, "{err}");
    assert!(err.contains("sweep complete"), "{err}");
    assert!(!err.contains('\u{1b}'), "no ANSI escape in: {err:?}");
}

/// A Telegram `chat_id` is a number in Telegram's own docs; written unquoted it is read as
/// its digits.
#[test]
fn an_unquoted_numeric_chat_id_is_accepted() {
    let (_rt, sim) = sim_runtime(1, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        "channels:\n  chat: { type: telegram, bot_token: \"123456:ABCdefGhIJKlmnOPQRstuVWXyz0123456789\", chat_id: -1001234567890 }\n",
    );
    std::fs::write(&config, text).unwrap();
    let (ok, out, err) = common::partnerwatch(&config, &["check"]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("chat (telegram)"), "{out}");
}

/// An unencoded `#` in an SMTP password would send mail to another host in the clear:
/// `check` refuses it and says how to write it, without printing the password.
#[test]
fn an_smtp_url_with_an_unencoded_hash_is_refused_with_the_fix() {
    let (_rt, sim) = sim_runtime(1, 5);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        "channels:\n  mail: { type: email, smtp_url: \"smtp://pw:pa#ss-word-77@mail.example:587?tls=required\", from: pw@example.com, to: [ops@example.com] }\n",
    );
    std::fs::write(&config, text).unwrap();
    let (ok, out, err) = common::partnerwatch(&config, &["check"]);
    assert!(!ok, "{out}");
    assert!(err.contains("URL-encode") && err.contains("%23"), "{err}");
    assert!(!err.contains("ss-word-77"), "{err}");
}

/// The binary allocates with jemalloc and jemalloc reads the options the crate exports (one
/// arena): a misspelt symbol or a lost `#[global_allocator]` would be ignored without a word,
/// and the sweep's figures with it. jemalloc prints its options at exit when asked to.
#[cfg(unix)]
#[test]
fn the_binary_allocates_with_jemalloc_and_its_options() {
    let (ok, _, stderr) = run(partnerwatch()
        .arg("--version")
        .env("_RJEM_MALLOC_CONF", "stats_print:true"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("jemalloc statistics"),
        "jemalloc did not print its statistics: {stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.trim() == "opt.narenas: 1"),
        "jemalloc did not take the crate's options: {}",
        stderr
            .lines()
            .filter(|l| l.contains("narenas"))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
