//! Acting on referrals (DESIGN §6 guarantee 8) as a user does: `partnerwatch referral …`
//! processes against the simulator's write side, a real state folder, real crashes.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use assert_cmd::cargo::CommandCargoExt;

/// `partnerwatch --config CONFIG ARGS…`: exit code, stdout, stderr (no terminal on stdin).
fn pw(config: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::cargo_bin("partnerwatch")
        .unwrap()
        .env_remove("PARTNERWATCH_CONFIG")
        .env_remove("RUST_LOG")
        .env("USER", "alice")
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The ids of the simulator's referrals that are `status` now (incoming ones).
fn ids_in(sim: &partnerwatch::sim::Simulator, status: &str) -> Vec<String> {
    sim.state()
        .referrals()
        .iter()
        .filter(|r| r["status"] == status && r["direction"] != "Outgoing")
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn referral(sim: &partnerwatch::sim::Simulator, id: &str) -> serde_json::Value {
    sim.state()
        .referrals()
        .iter()
        .find(|r| r["id"] == id)
        .unwrap()
        .clone()
}

/// The kinds and data of the events stored for `id`.
fn events_of(config: &Path, id: &str) -> Vec<serde_json::Value> {
    let (code, out, err) = pw(config, &["events", "--json", "--since", "400d"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["entity_id"] == id)
        .collect()
}

/// A simulator at the system time, a configuration for it in a temporary folder, and the
/// baseline sweep done.
struct World {
    _rt: tokio::runtime::Runtime,
    sim: partnerwatch::sim::Simulator,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
}

fn polled(referrals: usize) -> World {
    let (rt, sim) = common::sim_runtime_now(referrals, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let (code, _, err) = pw(&config, &["poll"]);
    assert_eq!(code, 0, "{err}");
    World {
        _rt: rt,
        sim,
        _dir: dir,
        config,
    }
}

#[test]
fn accepting_from_the_command_line_moves_the_referral_once_and_is_not_announced_again() {
    let (_rt, sim) = common::sim_runtime_now(30, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let (code, _, err) = pw(&config, &["poll"]);
    assert_eq!(code, 0, "{err}");
    let new = ids_in(&sim, "New");
    assert!(
        new.len() >= 3,
        "the simulator has New referrals: {}",
        new.len()
    );
    let id = new[0].as_str();

    let (code, out, _) = pw(&config, &["referral", "show", id]);
    assert_eq!(code, 0);
    assert!(
        out.contains("Can do now") && out.contains("accept, decline"),
        "{out}"
    );
    assert!(
        out.contains(referral(&sim, id)["eTag"].as_str().unwrap()),
        "{out}"
    );

    // Without --yes and without a terminal to ask at, nothing is sent.
    let (code, _, err) = pw(&config, &["referral", "accept", id]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(sim.state().stats.patches, 0);

    let (code, out, err) = pw(&config, &["referral", "accept", id, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("Accepted — it is Active/Accepted now"),
        "{out}"
    );
    let now = referral(&sim, id);
    assert_eq!(
        (now["status"].as_str(), now["substatus"].as_str()),
        (Some("Active"), Some("Accepted"))
    );
    assert_eq!(sim.state().stats.patches_applied, 1);

    // The outcome is in the event log, with who did it, and was delivered.
    let events = events_of(&config, id);
    let acted: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["kind"] == "referral.acted")
        .collect();
    assert_eq!(acted.len(), 1, "{events:?}");
    assert_eq!(acted[0]["data"]["result"], "ok");
    assert_eq!(acted[0]["data"]["via"], "cli");
    assert!(acted[0]["data"]["by"].as_str().unwrap().contains("alice"));
    let inbox = common::files(&dir.path().join("inbox"));
    assert!(
        inbox.iter().any(|f| f.contains("referral_acted")),
        "{inbox:?}"
    );

    // The next sweep sees the change partnerwatch made and announces nothing about it.
    let (code, _, err) = pw(&config, &["poll"]);
    assert_eq!(code, 0, "{err}");
    let kinds: Vec<String> = events_of(&config, id)
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert!(
        !kinds
            .iter()
            .any(|k| k == "referral.status_changed" || k == "referral.changed"),
        "announced twice: {kinds:?}"
    );

    // Again: it is Active now, so it cannot be accepted; nothing is sent.
    let (code, out, _) = pw(&config, &["referral", "accept", id, "--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("it is Active/Accepted now"), "{out}");
    assert_eq!(sim.state().stats.patches, 1, "no second PATCH");

    // A move outside the documented table is refused before anything is sent.
    let (code, out, _) = pw(&config, &["referral", "win", &new[1], "--yes"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("only a referral that is Active can"), "{out}");
    // Declining needs a reason: clap refuses without one.
    let (code, _, err) = pw(&config, &["referral", "decline", &new[1], "--yes"]);
    assert_ne!(code, 0);
    assert!(err.contains("--reason"), "{err}");
    assert_eq!(sim.state().stats.patches, 1);
}

#[test]
fn an_update_changes_only_what_it_names_and_show_json_says_what_can_be_done() {
    let world = polled(20);
    let (sim, config) = (&world.sim, world.config.clone());
    let id = ids_in(sim, "New")[0].clone();
    let before = referral(sim, &id);
    let (code, out, err) = pw(
        &config,
        &[
            "referral",
            "update",
            &id,
            "--deal-value",
            "64000",
            "--notes",
            "Two phases; see the RFP",
            "--add-member",
            "Jane Doe <jane.doe@contoso.example>",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let after = referral(sim, &id);
    assert_eq!(after["details"]["dealValue"], 64000.0);
    assert_eq!(after["details"]["notes"], "Two phases; see the RFP");
    let team = after["team"].as_array().unwrap();
    assert_eq!(team.len(), before["team"].as_array().unwrap().len() + 1);
    assert_eq!(team.last().unwrap()["email"], "jane.doe@contoso.example");
    assert_eq!(
        after["status"], before["status"],
        "an update moves no status"
    );
    let (code, _, _) = pw(&config, &["referral", "update", &id, "--yes"]);
    assert_eq!(code, 2, "nothing to update is refused");

    let (code, out, _) = pw(&config, &["referral", "show", &id, "--json"]);
    assert_eq!(code, 0);
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        shown["referral"]["details"]["dealValue"], 64000.0,
        "the stored answer"
    );
    assert_eq!(shown["possible"], serde_json::json!(["accept", "decline"]));
    assert!(shown["link"].as_str().unwrap().ends_with(&id));
    let (code, out, _) = pw(&config, &["referral", "show", "no-such-id"]);
    assert_eq!(code, 2, "{out}");
}

#[test]
fn a_referral_changed_in_partner_center_first_is_read_again_and_the_person_told_what_changed() {
    let world = polled(30);
    let (sim, config) = (&world.sim, world.config.clone());
    let id = ids_in(sim, "New")[0].clone();
    // Someone changes the deal value in Partner Center; partnerwatch's eTag is stale now.
    sim.state()
        .patch_referral(&id, &serde_json::json!({"details": {"dealValue": 777_000}}));
    let fresh = referral(sim, &id)["eTag"].as_str().unwrap().to_string();

    let (code, out, err) = pw(
        &config,
        &[
            "referral",
            "decline",
            &id,
            "--reason",
            "Budget cut",
            "--yes",
        ],
    );
    assert_eq!(code, 1, "412 exits 1: {out}{err}");
    assert!(out.contains("changed in Partner Center first"), "{out}");
    assert!(
        out.contains("/details/dealValue") && out.contains("777000"),
        "{out}"
    );
    assert_eq!(sim.state().stats.conflicts, 1);
    assert_eq!(sim.state().stats.patches_applied, 0, "nothing was changed");
    assert_eq!(referral(sim, &id)["status"], "New");
    // The referral as read again is stored: its new eTag is shown.
    let (_, shown, _) = pw(&config, &["referral", "show", &id]);
    assert!(shown.contains(&fresh), "{shown}");
    let acted = events_of(&config, &id)
        .into_iter()
        .find(|e| e["kind"] == "referral.acted")
        .unwrap();
    assert_eq!(acted["data"]["result"], "conflict");
    assert_eq!(acted["data"]["http_status"], 412);

    // Now partnerwatch holds the current eTag: the same request goes through.
    let (code, out, _) = pw(
        &config,
        &[
            "referral",
            "decline",
            &id,
            "--reason",
            "Budget cut",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let r = referral(sim, &id);
    assert_eq!(r["substatus"], "Declined");
    assert_eq!(r["statusReason"], "Budget cut");
}

/// `referral accept` of a New referral, killed after Partner Center applied its PATCH and
/// while the answer was still on its way; the referral's id.
fn killed_mid_accept(sim: &partnerwatch::sim::Simulator, config: &Path) -> String {
    let id = ids_in(sim, "New")[0].clone();
    sim.state()
        .delay_patch_answers(Some(Duration::from_secs(30)));
    let mut child = Command::cargo_bin("partnerwatch")
        .unwrap()
        .env_remove("RUST_LOG")
        .arg("--config")
        .arg(config)
        .args(["referral", "accept", &id, "--yes"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    common::wait_for(
        "the PATCH to be applied",
        Path::new("/dev/null"),
        Duration::from_secs(30),
        || sim.state().stats.patches_applied == 1,
    );
    child.kill().unwrap();
    child.wait().unwrap();
    sim.state().delay_patch_answers(None);
    id
}

#[test]
fn a_crash_after_the_patch_went_out_sends_no_second_one() {
    let world = polled(30);
    let (sim, config) = (&world.sim, world.config.clone());
    let id = killed_mid_accept(sim, &config);

    // The person tries again: partnerwatch reads the referral, sees it took effect, and
    // sends nothing.
    let (code, out, err) = pw(&config, &["referral", "accept", &id, "--yes"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Accepted"), "{out}");
    assert_eq!(sim.state().stats.patches, 1, "one PATCH in all");
    assert!(sim.state().stats.single_reads >= 1, "it read the referral");
    let acted: Vec<serde_json::Value> = events_of(&config, &id)
        .into_iter()
        .filter(|e| e["kind"] == "referral.acted")
        .collect();
    assert_eq!(acted.len(), 1, "{acted:?}");
    assert_eq!(acted[0]["data"]["result"], "ok");
    // And the store holds the accepted referral: the next sweep announces nothing about it.
    assert_eq!(pw(&config, &["poll"]).0, 0);
    assert!(!events_of(&config, &id)
        .iter()
        .any(|e| e["kind"] == "referral.status_changed"));
}

#[test]
fn without_a_person_signed_in_nothing_is_sent_and_the_remedy_is_said() {
    let world = polled(10);
    let (sim, config) = (&world.sim, world.config.clone());
    let id = ids_in(sim, "New")[0].clone();
    // An app-only sign-in (client credentials): the Referrals API takes only App+User.
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("  static_token: {}\n", sim.token()),
        &format!(
            "  tenant_id: contoso.onmicrosoft.com\n  client_id: app\n  client_secret: s3cret\n  authority: {}\n",
            sim.authority()
        ),
    );
    std::fs::write(&config, text).unwrap();
    let (code, out, err) = pw(&config, &["referral", "accept", &id, "--yes"]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("partnerwatch login"), "{out}");
    assert_eq!(sim.state().stats.patches, 0);
}

#[test]
fn an_accepted_shared_referral_is_checked_for_deal_registration_once_unless_the_partner_is_not_eligible(
) {
    let (_rt, sim) = common::sim_runtime_now(30, 10);
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}digests:\n  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [inbox]\n"),
    )
    .unwrap();
    // The first one meets every documented policy (the simulator counts a customer as
    // Microsoft-managed by its id, and two solutions as Azure IP co-sell).
    let mut new = ids_in(&sim, "New");
    let managed = new
        .iter()
        .position(|id| {
            id.chars()
                .last()
                .and_then(|c| c.to_digit(16))
                .is_some_and(|d| d % 4 != 0)
        })
        .unwrap();
    new.swap(0, managed);
    for id in &new[..3] {
        sim.state()
            .patch_referral(id, &serde_json::json!({"type": "Shared"}));
    }
    sim.state().patch_referral(
        &new[0],
        &serde_json::json!({"details": {"currency": "USD", "dealValue": 50_000,
            "requirements": {"solutions": [{"id": "SOL-CloudMigration", "name": "CloudMigration"}]}}}),
    );
    assert_eq!(pw(&config, &["poll"]).0, 0);

    // Accepted through partnerwatch: checked once, the policies said in words.
    let (code, out, _) = pw(&config, &["referral", "accept", &new[0], "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sim.state().stats.eligibility_checks, 1);
    let checked: Vec<serde_json::Value> = events_of(&config, &new[0])
        .into_iter()
        .filter(|e| e["kind"] == "referral.registration_eligibility")
        .collect();
    assert_eq!(checked.len(), 1, "{checked:?}");
    let data = &checked[0]["data"];
    let named = data["passed"].as_array().unwrap().len() + data["failed"].as_array().unwrap().len();
    assert_eq!(named, 5, "the five documented policies: {data}");
    assert!(
        data["passed_words"]
            .as_str()
            .unwrap()
            .contains("co-sell deal type"),
        "{data}"
    );
    assert_eq!(data["isEligible"], true, "{data}");
    let (_, shown, _) = pw(&config, &["referral", "show", &new[0]]);
    assert!(
        shown.contains("Deal reg.") && shown.contains("eligible"),
        "{shown}"
    );
    // The weekly digest lists it: eligible, not registered yet.
    let (code, digest, err) = pw(&config, &["digest", "weekly"]);
    assert_eq!(code, 0, "{err}");
    let list = digest
        .split("Eligible for deal registration, not registered yet:")
        .nth(1)
        .unwrap_or_else(|| panic!("no list: {digest}"));
    assert!(list.contains("50,000 USD"), "{list}");
    // Nothing changed since: the next sweep does not ask again.
    assert_eq!(pw(&config, &["poll"]).0, 0);
    assert_eq!(sim.state().stats.eligibility_checks, 1);

    // Accepted in Partner Center and seen by a sweep: checked too.
    sim.state().patch_referral(
        &new[1],
        &serde_json::json!({"status": "Active", "substatus": "Accepted"}),
    );
    assert_eq!(pw(&config, &["poll"]).0, 0);
    assert_eq!(sim.state().stats.eligibility_checks, 2);

    // A partner that may not register deals: no per-referral check at all.
    sim.state().set_partner_eligible(false);
    let (code, out, err) = pw(&config, &["referral", "accept", &new[2], "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        sim.state().stats.eligibility_checks,
        2,
        "not asked per referral"
    );
    assert!(
        err.contains("not eligible for deal registration"),
        "said once: {err}"
    );
}

#[test]
fn run_settles_an_action_a_crash_interrupted_without_sending_it_again() {
    let world = polled(30);
    let (sim, config) = (&world.sim, world.config.clone());
    let id = killed_mid_accept(sim, &config);

    // The daemon starts, finds the action half done, reads the referral, and settles it.
    let log = world._dir.path().join("run.log");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("listen: off\n{text}")).unwrap();
    let mut run = common::start_run(&config, &log, || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("settled actions a stop had interrupted")
    });
    run.kill().unwrap();
    run.wait().unwrap();
    assert_eq!(sim.state().stats.patches, 1, "not sent again");
    let acted: Vec<serde_json::Value> = events_of(&config, &id)
        .into_iter()
        .filter(|e| e["kind"] == "referral.acted")
        .collect();
    assert_eq!(acted.len(), 1, "{acted:?}");
    assert_eq!(acted[0]["data"]["result"], "ok");
}

#[test]
fn a_dry_run_offers_no_actions_and_a_real_sweep_does() {
    let world = polled(10);
    let (sim, config) = (&world.sim, world.config.clone());
    // A Telegram channel for actions (nothing listens at its address: only planning matters).
    let port = common::free_port();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        &format!("channels:\n  chat: {{ type: telegram, bot_token: \"1:x\", chat_id: \"-100\", api_url: \"http://127.0.0.1:{port}\" }}\n"),
    );
    std::fs::write(
        &config,
        format!("actions:\n  telegram: {{ channel: chat, allow: [1] }}\n{text}"),
    )
    .unwrap();
    std::fs::write(
        world._dir.path().join("rules/chat.yaml"),
        "- name: chat\n  on: referral.new\n  channels: [chat]\n  template: any\n",
    )
    .unwrap();
    let id = sim.state().add_referrals(1).remove(0);
    sim.state().patch_referral(
        &id,
        &serde_json::json!({"status": "New", "substatus": "Pending", "direction": "Incoming"}),
    );
    let offered = || {
        let store = partnerwatch::store::Store::open(&world._dir.path().join("state")).unwrap();
        store
            .actions_in(partnerwatch::model::ActionState::Pending)
            .unwrap()
            .into_iter()
            .filter(|a| a.referral == id)
            .count()
    };
    let (code, out, err) = pw(&config, &["poll", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&id), "the dry run shows the message: {out}");
    assert_eq!(offered(), 0, "a dry run writes nothing");
    assert_eq!(pw(&config, &["poll"]).0, 0);
    assert_eq!(offered(), 2, "accept and decline are offered");
}
