//! The weekly digest end to end: a scripted fortnight against the simulator gives digests
//! whose counts and sums are exactly the script's; the email arrives over real SMTP with its
//! charts as PNG parts named by Content-ID; slots follow the local wall clock across DST; a
//! slot is sent once, also across restarts of real `partnerwatch run` processes.

mod common;

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use mail_parser::MimeHeaders;
use partnerwatch::clock::{Clock, ManualClock};
use partnerwatch::digest::{self, content::Content};
use partnerwatch::pipeline::Pipeline;
use partnerwatch::sim::{FaultAction, SimConfig, Simulator};
use serde_json::{json, Value};

use common::PollAll;

const DAY: SignedDuration = SignedDuration::from_hours(24);

async fn quiet_sim() -> Simulator {
    Simulator::start(
        SimConfig {
            seed: 11,
            referrals: 8,
            tenants: 6,
            page_size: 50,
            arrivals_per_day: 0.0,
            ..SimConfig::default()
        },
        0,
    )
    .await
    .unwrap()
}

/// A configuration with referrals, the Copilot dataset and a weekly digest to `channels`.
fn digest_config(
    dir: &std::path::Path,
    sim: &Simulator,
    channel: &str,
    tz: &str,
) -> std::path::PathBuf {
    let abss = format!(
        "  abss:\n    base_url: {}\n    datasets: [copilot, mci_performance, mci_summary]\n    every: 1s\n  license_usage:\n    base_url: {}\n    every: 1s\n",
        sim.abss_base_url("v1.5"),
        sim.license_base_url()
    );
    let path = common::write_config(dir, sim, &abss);
    let mut text = std::fs::read_to_string(&path).unwrap();
    text = text.replace(
        "channels:\n  inbox: { type: inbox, dir: ./inbox }\n",
        &format!("timezone: {tz}\nchannels:\n  inbox: {{ type: inbox, dir: ./inbox }}\n{channel}"),
    );
    // Every channel named in `channel` gets the digest; without any, the inbox does.
    let named: Vec<&str> = channel
        .lines()
        .filter_map(|l| l.trim().split_once(':').map(|(n, _)| n))
        .collect();
    let target = if named.is_empty() {
        "inbox".to_string()
    } else {
        named.join(", ")
    };
    text.push_str(&format!(
        "digests:\n  - name: weekly\n    schedule: \"0 8 * * MON\"\n    channels: [{target}]\n"
    ));
    std::fs::write(&path, text).unwrap();
    path
}

fn field(r: &Value, path: &str) -> Value {
    r.pointer(path).cloned().unwrap_or(Value::Null)
}

/// Sum of deal values per currency of the sim's referrals with these ids.
fn sums(sim: &Simulator, ids: &[String]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for r in sim.state().referrals() {
        if ids.iter().any(|id| r["id"] == json!(id)) {
            *out.entry(field(r, "/details/currency").as_str().unwrap().to_string())
                .or_insert(0.0) += field(r, "/details/dealValue").as_f64().unwrap();
        }
    }
    out
}

fn content_sums(m: &[partnerwatch::digest::content::Money]) -> BTreeMap<String, f64> {
    m.iter().map(|m| (m.currency.clone(), m.amount)).collect()
}

fn statuses(sim: &Simulator) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in sim.state().tenants() {
        *out.entry(t["adoptionStatus"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    out
}

fn distribution(c: &Content) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let copilot = c.copilot.as_ref().expect("a Copilot section");
    let now = copilot
        .distribution
        .iter()
        .filter(|h| h.now > 0)
        .map(|h| (h.status.clone(), h.now))
        .collect();
    let then = copilot
        .distribution
        .iter()
        .filter(|h| h.week_ago > 0)
        .map(|h| (h.status.clone(), h.week_ago))
        .collect();
    (now, then)
}

async fn day(p: &Pipeline, sim: &Simulator, clock: &ManualClock, at: Timestamp) {
    clock.set(at);
    sim.state().set_now(at);
    for source in &p.sources {
        let _ = p.poll(source, false).await;
    }
}

/// Partner Center closes referral `id` with `substatus` (Won, Lost, Declined) and a reason.
fn close(sim: &Simulator, id: &str, substatus: &str, reason: &str) {
    let mut patch = json!({"status": "Closed", "substatus": substatus});
    if !reason.is_empty() {
        patch["statusReason"] = json!(reason);
    }
    sim.state().patch_referral(id, &patch);
}

/// The next sweep of the first source polled fails: 500 on every try (3 with the test config).
fn fail_next_sweep(sim: &Simulator) {
    sim.state().add_fault(partnerwatch::sim::Fault {
        page: None,
        action: FaultAction::Status {
            status: 500,
            retry_after: None,
        },
        times: 3,
    });
}

fn tenant(sim: &Simulator, i: usize) -> (String, String) {
    let s = sim.state();
    let t = &s.tenants()[i];
    (
        t["tenantId"].as_str().unwrap().to_string(),
        t["adoptionStatus"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_scripted_fortnight_gives_digests_with_exactly_its_counts_and_sums() {
    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = digest_config(dir.path(), &sim, "", "UTC");
    let clock = common::clock();
    let start = clock.now();
    let p = common::pipeline(&path, &clock);
    p.poll_all().await; // the baseline, Monday 08:00
    let week_ago = statuses(&sim);

    // Week 1.
    day(&p, &sim, &clock, start + DAY).await;
    let arrived = sim.state().add_referrals(4);
    day(&p, &sim, &clock, start + DAY * 2).await;
    let accept = json!({"status": "Active", "substatus": "Accepted"});
    sim.state().patch_referral(&arrived[0], &accept);
    sim.state().patch_referral(&arrived[1], &accept);
    day(&p, &sim, &clock, start + DAY * 3).await;
    close(&sim, &arrived[1], "Won", "");
    let ranking = partnerwatch::detect::copilot::DEFAULT_RANKING;
    let rank = |s: &str| ranking.iter().position(|r| *r == s).unwrap();
    let tenants: Vec<(String, String)> = (0..6).map(|i| tenant(&sim, i)).collect();
    let worse_i = tenants.iter().position(|(_, s)| rank(s) < 7).unwrap();
    let better_i = (0..6)
        .find(|i| *i != worse_i && rank(&tenants[*i].1) > 0)
        .unwrap();
    sim.state()
        .patch_tenant(&tenants[worse_i].0, &json!({"adoptionStatus": ranking[7]}));
    sim.state()
        .patch_tenant(&tenants[better_i].0, &json!({"adoptionStatus": ranking[0]}));
    // An MCI engagement reaches its claim.
    let (claim, engagement_was) = {
        let s = sim.state();
        let row = &s.mci_rows()[0];
        (
            row["claimID"].as_i64().unwrap(),
            row["milestone"].as_str().unwrap().to_string(),
        )
    };
    sim.state()
        .patch_mci_row(claim, &json!({"milestone": "Claim Approved"}));
    // A customer gives up licenses: a new processing day with fewer active ones.
    let (active_was, license_customer) = {
        let s = sim.state();
        let row = &s.licenses()[0];
        (
            row["licenseActive"].as_i64().unwrap(),
            // Shown on one line, whatever the customer's name holds.
            row["customerName"]
                .as_str()
                .unwrap_or_default()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" "),
        )
    };
    sim.state().patch_license(
        0,
        &json!({"licenseActive": active_was - 7, "processedDateTime": "2026-11-26T00:00:00"}),
    );
    fail_next_sweep(&sim);
    day(&p, &sim, &clock, start + DAY * 4).await; // referrals fails (3 tries), copilot is fine
    sim.state().clear_faults();
    close(
        &sim,
        &arrived[2],
        "Lost",
        "Budget moved to next year \"FY28\"",
    );
    day(&p, &sim, &clock, start + DAY * 5).await;

    // The slot: Monday 08:00, a week after the start.
    let slot = start + DAY * 7;
    clock.set(slot);
    sim.state().set_now(slot);
    let queued = digest::enqueue_due(&p.digest_inputs(), slot).unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].slot, slot);
    assert!(
        digest::enqueue_due(&p.digest_inputs(), slot + SignedDuration::from_hours(2))
            .unwrap()
            .is_empty(),
        "once per slot"
    );

    let weekly = digest::find(&p.config.digests, "weekly").unwrap().clone();
    let c = digest::compose(&p.digest_inputs(), &weekly, slot)
        .unwrap()
        .content;
    let r = c.referrals.as_ref().expect("a referrals section");
    assert_eq!(r.new_count, 4);
    // The pipeline chart: eight weeks, this week's four arrivals last, every referral created in
    // those eight weeks counted once.
    assert_eq!(c.pipeline.len(), 8);
    assert_eq!(c.pipeline[7].new, 4);
    let eight_weeks: usize = sim
        .state()
        .referrals()
        .iter()
        .filter(|r| {
            let created: Timestamp = r["createdDateTime"].as_str().unwrap().parse().unwrap();
            created >= slot - DAY * 56 && created < slot
        })
        .count();
    assert_eq!(c.pipeline.iter().map(|w| w.new).sum::<usize>(), eight_weeks);
    assert_eq!(content_sums(&r.new_value), sums(&sim, &arrived));
    let mut accepted: Vec<String> = r.accepted.iter().map(|l| l.id.clone()).collect();
    accepted.sort();
    let mut expected = arrived[..2].to_vec();
    expected.sort();
    assert_eq!(
        accepted, expected,
        "both were accepted this week, one then won"
    );
    assert_eq!(
        r.won.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        vec![arrived[1].clone()]
    );
    assert_eq!(content_sums(&r.won_value), sums(&sim, &arrived[1..2]));
    assert_eq!(r.lost.len(), 1);
    assert_eq!(r.lost[0].id, arrived[2]);
    assert_eq!(r.lost[0].note, "Budget moved to next year \"FY28\"");
    assert!(r.declined.is_empty());
    // Expiring: every New referral due within the next seven days, the most urgent first.
    let mut due: Vec<(Timestamp, String)> = sim
        .state()
        .referrals()
        .iter()
        .filter(|r| r["status"] == "New")
        .filter_map(|r| {
            let d: Timestamp = r["expirationDateTime"].as_str()?.parse().ok()?;
            (d > slot && d <= slot + DAY * 7).then(|| (d, r["id"].as_str().unwrap().to_string()))
        })
        .collect();
    due.sort();
    assert_eq!(
        r.expiring.iter().map(|l| l.id.clone()).collect::<Vec<_>>(),
        due.into_iter().map(|(_, id)| id).collect::<Vec<_>>()
    );
    let (now, then) = distribution(&c);
    assert_eq!(now, statuses(&sim));
    assert_eq!(then, week_ago);
    let copilot = c.copilot.as_ref().unwrap();
    let moves = |v: &[partnerwatch::digest::content::Move]| {
        v.iter()
            .map(|m| (m.from.clone(), m.to.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        moves(&copilot.worse),
        vec![(tenants[worse_i].1.clone(), ranking[7].to_string())]
    );
    assert_eq!(
        moves(&copilot.better),
        vec![(tenants[better_i].1.clone(), ranking[0].to_string())]
    );
    let mci = c.mci.as_ref().expect("an MCI section");
    let milestones: Vec<(String, String)> = mci
        .milestones
        .iter()
        .map(|m| (m.from.clone(), m.to.clone()))
        .collect();
    assert_eq!(
        milestones,
        vec![(engagement_was, "Claim Approved".to_string())]
    );
    let summary = partnerwatch::sim::abss::mci_summary(sim.state().mci_rows());
    assert_eq!(mci.plays.len(), summary.as_object().unwrap().len());
    for play in &mci.plays {
        let expected = &summary[&play.key];
        assert_eq!(
            json!(play.eligibility),
            expected["eligibility"],
            "{}",
            play.play
        );
        assert_eq!(
            json!(play.passing),
            expected["passingCount"],
            "{}",
            play.play
        );
        assert_eq!(
            json!(play.total),
            expected["totalEngagements"],
            "{}",
            play.play
        );
    }
    assert!(mci
        .plays
        .iter()
        .any(|p| p.passing == 1 && p.eligibility == "Eligible"));
    let drops: Vec<(String, i64, i64, i64)> = c
        .licenses
        .as_ref()
        .expect("a license section")
        .drops
        .iter()
        .map(|d| (d.customer.clone(), d.from, d.to, d.delta))
        .collect();
    assert_eq!(
        drops,
        vec![(license_customer, active_was, active_was - 7, -7)]
    );
    let health = c.health.as_ref().expect("the failed sweep is reported");
    assert_eq!(health.sweeps_failed, 1);
    assert_eq!(health.failed_by_source, vec!["referrals: 1".to_string()]);

    p.deliver().await.unwrap();
    let files = common::files(&dir.path().join("inbox"));
    let digests: Vec<&String> = files.iter().filter(|f| f.ends_with("digest.txt")).collect();
    assert_eq!(digests.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(dir.path().join("inbox").join(digests[0])).unwrap();
    assert!(text.contains("New this week: 4"), "{text}");
    assert!(
        text.contains("Lost: 1") && text.contains("Won: 1"),
        "{text}"
    );

    // Week 2: two arrive, one declines; a tenant moves and moves back (no net move).
    let week1_now = statuses(&sim);
    day(&p, &sim, &clock, slot + DAY).await;
    let second = sim.state().add_referrals(2);
    let flip = (0..6).find(|i| *i != worse_i && *i != better_i).unwrap();
    let (flip_id, flip_from) = tenant(&sim, flip);
    let flip_to = if rank(&flip_from) == 7 {
        ranking[6]
    } else {
        ranking[7]
    };
    sim.state()
        .patch_tenant(&flip_id, &json!({"adoptionStatus": flip_to}));
    day(&p, &sim, &clock, slot + DAY * 2).await;
    sim.state()
        .patch_tenant(&flip_id, &json!({"adoptionStatus": flip_from}));
    close(&sim, &second[1], "Declined", "Not our region");
    day(&p, &sim, &clock, slot + DAY * 3).await;

    let slot2 = slot + DAY * 7;
    clock.set(slot2);
    assert_eq!(
        digest::enqueue_due(&p.digest_inputs(), slot2)
            .unwrap()
            .len(),
        1
    );
    let c = digest::compose(&p.digest_inputs(), &weekly, slot2)
        .unwrap()
        .content;
    let r = c.referrals.as_ref().unwrap();
    assert_eq!(r.new_count, 2);
    assert_eq!(content_sums(&r.new_value), sums(&sim, &second));
    assert!(
        r.won.is_empty() && r.lost.is_empty() && r.accepted.is_empty(),
        "last week's are not repeated"
    );
    assert_eq!(r.declined.len(), 1);
    assert_eq!(r.declined[0].note, "Not our region");
    let copilot = c.copilot.as_ref().unwrap();
    assert!(
        copilot.worse.is_empty() && copilot.better.is_empty(),
        "a move and back is no move"
    );
    let (now, then) = distribution(&c);
    assert_eq!(now, statuses(&sim));
    assert_eq!(then, week1_now);
    assert!(c.health.is_none(), "a healthy week has no health section");
    assert!(c.licenses.is_none(), "no license moved this week");
    assert!(
        c.mci.as_ref().unwrap().milestones.is_empty(),
        "last week's milestone is not repeated"
    );
    p.deliver().await.unwrap();
    let digests = common::files(&dir.path().join("inbox"))
        .into_iter()
        .filter(|f| f.ends_with("digest.txt"))
        .count();
    assert_eq!(digests, 2);
}

#[tokio::test]
async fn schedules_follow_the_local_clock_across_daylight_saving_changes() {
    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = digest_config(dir.path(), &sim, "", "Europe/Berlin");
    let clock = ManualClock::new("2026-10-17T00:00:00Z".parse().unwrap());
    let p = common::pipeline(&path, &clock);
    // Hour by hour over three weeks around the end of summer time (25 Oct 2026): the
    // daemon's loop asks this often and more.
    let mut fired = Vec::new();
    let mut t: Timestamp = "2026-10-17T00:00:00Z".parse().unwrap();
    while t < "2026-11-03T00:00:00Z".parse().unwrap() {
        for q in digest::enqueue_due(&p.digest_inputs(), t).unwrap() {
            fired.push((q.slot, t));
        }
        t += SignedDuration::from_mins(30);
    }
    let slots: Vec<String> = fired.iter().map(|(s, _)| s.to_string()).collect();
    // 08:00 in Berlin: 06:00Z in summer time, 07:00Z in winter time.
    assert_eq!(
        slots,
        vec![
            "2026-10-19T06:00:00Z",
            "2026-10-26T07:00:00Z",
            "2026-11-02T07:00:00Z"
        ]
    );
    for (slot, at) in fired {
        assert_eq!(slot, at, "sent at the slot, not later");
    }
}

#[tokio::test]
async fn the_digest_reaches_email_with_its_charts_inline_and_teams_as_a_card() {
    let (port, mailbox) = common::smtp_server();
    let cards: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let log = std::sync::Arc::clone(&cards);
    let app = axum::Router::new().route(
        "/workflows/digest",
        axum::routing::post(move |body: axum::body::Bytes| {
            let log = std::sync::Arc::clone(&log);
            async move {
                log.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
                axum::http::StatusCode::ACCEPTED
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let teams = format!("http://{}/workflows/digest", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let mail = format!("  mail: {{ type: email, smtp_url: \"smtp://127.0.0.1:{port}\", from: \"Partner Watch <pw@contoso.example>\", to: [sales@contoso.example] }}\n");
    let mail = format!("{mail}  team: {{ type: teams, webhook_url: \"{teams}\" }}\n");
    let path = digest_config(dir.path(), &sim, &mail, "UTC");
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    p.poll_all().await;
    let start = clock.now();
    day(&p, &sim, &clock, start + DAY).await;
    sim.state().add_referrals(2);
    day(&p, &sim, &clock, start + DAY * 2).await;
    p.deliver().await.unwrap(); // the rule's own messages about the arrivals
    let slot = start + DAY * 7;
    clock.set(slot);
    assert_eq!(
        digest::enqueue_due(&p.digest_inputs(), slot).unwrap().len(),
        1
    );
    let report = p.deliver().await.unwrap();
    let pending = p.store.deliveries(None).unwrap();
    assert_eq!(
        report.sent,
        2,
        "{:?}",
        pending
            .iter()
            .map(|d| (&d.channel, &d.last_error))
            .collect::<Vec<_>>()
    );

    let raw = mailbox.messages()[0].clone();
    let parsed = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("MIME");
    assert_eq!(
        parsed.subject().unwrap(),
        "Partner digest: week of 23 Nov 2026"
    );
    let wire = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(
        wire.contains("multipart/alternative") && wire.contains("multipart/related"),
        "{wire}"
    );
    let html = parsed.body_html(0).unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(text.contains("New this week: 2"), "{text}");
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
    let mut cids = Vec::new();
    for part in parsed.parts.iter() {
        let is_png = part
            .content_type()
            .is_some_and(|ct| ct.ctype() == "image" && ct.subtype() == Some("png"));
        if is_png {
            let cid = part
                .content_id()
                .expect("an inline picture has a Content-ID");
            assert!(
                part.contents().starts_with(b"\x89PNG\r\n\x1a\n"),
                "a real PNG"
            );
            assert!(
                html.contains(&format!("src=\"cid:{cid}\"")),
                "{cid} is shown"
            );
            cids.push(cid.to_string());
        }
    }
    assert_eq!(cids.len(), 2, "pipeline and adoption charts: {cids:?}");

    let cards = cards.lock().unwrap();
    assert_eq!(cards.len(), 1);
    assert!(cards[0].to_string().len() < 28 * 1024);
    let card = &cards[0]["attachments"][0]["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(
        card["body"][0]["text"],
        "Partner digest: week of 23 Nov 2026"
    );
    let facts: Vec<(String, String)> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "FactSet")
        .flat_map(|b| b["facts"].as_array().unwrap().clone())
        .map(|f| {
            (
                f["title"].as_str().unwrap().to_string(),
                f["value"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let new = &facts
        .iter()
        .find(|(t, _)| t == "New")
        .expect("the New fact")
        .1;
    assert!(new.starts_with("2 "), "{new}");
}

/// A slot that passed less than a day ago, on the real clock: a daily schedule an hour back.
fn an_hour_ago_daily() -> String {
    let t = Timestamp::now() - SignedDuration::from_hours(1);
    let z = t.to_zoned(jiff::tz::TimeZone::UTC);
    format!("{} {} * * *", z.minute(), z.hour())
}

#[test]
fn a_missed_slot_is_sent_once_on_start_and_not_again_after_a_restart() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(quiet_sim());
    let dir = tempfile::tempdir().unwrap();
    let path = digest_config(dir.path(), &sim, "", "UTC");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("0 8 * * MON", &an_hour_ago_daily())
        .replace(
            "state_dir: ./state\n",
            "state_dir: ./state\nlisten: \"off\"\n",
        );
    std::fs::write(&path, text).unwrap();
    let inbox = dir.path().join("inbox");
    let digests = || {
        common::files(&inbox)
            .into_iter()
            .filter(|f| f.ends_with("digest.txt"))
            .count()
    };
    for round in 0..2 {
        let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("partnerwatch"))
            .arg("--config")
            .arg(&path)
            .arg("run")
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait until the first sweeps are done (their records are in the store), then stop.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while digests() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(1500));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            digests(),
            1,
            "round {round}: one digest for the slot, whatever the restarts"
        );
    }
}

#[test]
fn the_digest_command_previews_prints_and_sends() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt.block_on(quiet_sim());
    let dir = tempfile::tempdir().unwrap();
    let path = digest_config(dir.path(), &sim, "", "UTC");
    let pw = |args: &[&str]| {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("partnerwatch"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .env_remove("RUST_LOG")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert!(pw(&["-q", "poll"]).0);

    let preview = dir.path().join("digest.html");
    let (ok, out, err) = pw(&["digest", "weekly", "--preview", preview.to_str().unwrap()]);
    assert!(ok, "{out}{err}");
    let html = std::fs::read_to_string(&preview).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(
        html.contains("Copilot adoption"),
        "the baseline's tenants are summarised"
    );
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 2);

    let (ok, out, _) = pw(&["digest", "weekly"]);
    assert!(ok && out.starts_with("Partner digest: week of "), "{out}");
    assert!(out.contains("COPILOT ADOPTION (6 tenants)"), "{out}");

    let (ok, _, err) = pw(&["digest", "monthly"]);
    assert!(
        !ok && err.contains("no digest named \"monthly\"") && err.contains("weekly"),
        "{err}"
    );

    let inbox = dir.path().join("inbox");
    let before = common::files(&inbox).len();
    let (ok, out, err) = pw(&["-q", "digest", "weekly", "--send"]);
    assert!(ok && out.contains("1 message(s) sent"), "{out}{err}");
    let after = common::files(&inbox);
    assert_eq!(after.len(), before + 1);
    assert!(after.last().unwrap().ends_with("digest.txt"), "{after:?}");
}

#[tokio::test]
async fn failed_sweeps_are_remembered_for_the_digest_and_forgotten_after_sixty_days() {
    let sim = quiet_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = digest_config(dir.path(), &sim, "", "UTC");
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    let referrals = p.source("referrals").unwrap();
    let t0 = clock.now();
    fail_next_sweep(&sim);
    p.poll(referrals, false).await.unwrap_err();
    let all = |p: &Pipeline| {
        p.store
            .sweep_failures(Timestamp::UNIX_EPOCH, t0 + DAY * 365)
            .unwrap()
    };
    assert_eq!(all(&p), vec![(t0, "referrals".to_string())]);
    clock.set(t0 + DAY * 61);
    fail_next_sweep(&sim);
    p.poll(referrals, false).await.unwrap_err();
    assert_eq!(
        all(&p),
        vec![(t0 + DAY * 61, "referrals".to_string())],
        "the old one is let go"
    );
}
