//! A state folder written by partnerwatch 0.1.0 (before the store was split and message
//! bodies were typed) still opens and works: its events, records and history read, its
//! pending deliveries go out to every kind of channel as that version would have sent them,
//! and the next sweep of the same records announces nothing.
//!
//! The fixture (`tests/fixtures/state-0.1.0`) was written by that version's binary: a
//! baseline of 37 referrals, two arrivals (`referral.new`, each for four channels that could
//! not be reached, so eight deliveries wait in the outbox), and a change of one of them.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::routing::post;
use partnerwatch::model::{DeliveryStatus, EventKind};
use serde_json::{json, Value};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-0.1.0");
/// The arrival that was changed after it arrived.
const CHANGED: &str = "d7215e92-d6c4-4b09-8ac1-2286aba01b3a";

type Log = Arc<Mutex<Vec<(String, Value)>>>;

/// Teams Workflows, the Telegram Bot API and a plain webhook, on one capture server.
async fn capture() -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new()
        .route(
            "/{*path}",
            post(
                |State(log): State<Log>,
                 UrlPath(path): UrlPath<String>,
                 body: axum::body::Bytes| async move {
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock().unwrap().push((path, body.clone()));
                    axum::Json(json!({"ok": true, "result": {
                        "message_id": 1, "date": 1_763_884_800,
                        "chat": {"id": body["chat_id"], "type": "supergroup", "title": "Sales"},
                        "text": "ok"
                    }}))
                },
            ),
        )
        .with_state(Arc::clone(&log));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn a_state_folder_written_by_0_1_0_opens_delivers_and_reannounces_nothing() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new(FIXTURE), &dir.path().join("state"));
    std::fs::create_dir_all(dir.path().join("state/db/blobs")).unwrap();
    let sim = common::sim(0, 100).await;
    let (base, log) = capture().await;
    let (smtp, mailbox) = common::smtp_server();
    let config = common::write_config(dir.path(), &sim, "");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        &format!(
            "channels:\n  teams: {{ type: teams, webhook_url: \"{base}/workflows/sig\" }}\n  mail: {{ type: email, smtp_url: \"smtp://127.0.0.1:{smtp}\", from: \"pw <pw@example.com>\", to: [sales@example.com] }}\n  chat: {{ type: telegram, bot_token: \"123:ABC\", chat_id: \"-1001\", api_url: \"{base}/\" }}\n  hook: {{ type: webhook, url: \"{base}/hook\" }}\n"
        ),
    );
    std::fs::write(&config, text).unwrap();
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: arrivals\n  on: referral.new\n  channels: [teams, mail, chat, hook]\n  template: any\n",
    )
    .unwrap();
    // A few minutes after the fixture was written: its deliveries are due, and no deadline
    // of its referrals has passed since.
    let clock = partnerwatch::clock::ManualClock::new("2026-12-01T21:05:00Z".parse().unwrap());
    let p = common::pipeline(&config, &clock);

    // What the old version stored reads back.
    let events = p.store.events().unwrap();
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!(count(EventKind::ReferralNew), 2, "{events:?}");
    assert_eq!(count(EventKind::ReferralChanged), 1);
    assert_eq!(common::stored_ids(&p.store, "referrals").len(), 39);
    assert_eq!(p.store.history("referrals", CHANGED).unwrap().len(), 1);
    assert!(p.store.baseline_at("referrals").unwrap().is_some());

    // Its eight waiting deliveries go out, each as its channel needs it.
    let pending = p.store.deliveries(Some(DeliveryStatus::Pending)).unwrap();
    assert_eq!(pending.len(), 8);
    let report = p.deliver().await.unwrap();
    assert_eq!((report.sent, report.dead), (8, 0), "{report:?}");
    let log = log.lock().unwrap().clone();
    let to = |prefix: &str| -> Vec<Value> {
        log.iter()
            .filter(|(path, _)| path.starts_with(prefix))
            .map(|(_, body)| body.clone())
            .collect()
    };
    let cards = to("workflows/");
    assert_eq!(cards.len(), 2);
    for envelope in &cards {
        let card = &envelope["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard", "{envelope}");
        assert!(
            card["body"][0]["text"]
                .as_str()
                .unwrap()
                .starts_with("New referral: "),
            "{card}"
        );
    }
    let chats = to("bot123:ABC/");
    assert_eq!(chats.len(), 2);
    for m in &chats {
        assert_eq!(m["parse_mode"], "HTML");
        assert!(
            m["text"].as_str().unwrap().starts_with("<b>New referral: "),
            "{m}"
        );
    }
    let hooks = to("hook");
    assert_eq!(hooks.len(), 2);
    for h in &hooks {
        assert!(
            h["message"]["body"]
                .as_str()
                .unwrap()
                .starts_with("New referral: "),
            "{h}"
        );
    }
    let mails = mailbox.messages();
    assert_eq!(mails.len(), 2);
    for raw in &mails {
        let mail = mail_parser::MessageParser::default().parse(raw).unwrap();
        assert!(mail.subject().unwrap().starts_with("New referral: "));
        assert!(mail.body_text(0).unwrap().contains("New referral: "));
        assert!(mail.body_html(0).unwrap().contains("<h2"), "an HTML part");
    }

    // The same records swept again: the old baseline and hashes hold, nothing is new.
    {
        let mut s = sim.state();
        for r in p.store.records("referrals").unwrap().iter() {
            s.insert_raw(r.unwrap().1.json().unwrap());
        }
    }
    let sweep = p.poll(&p.sources[0], false).await.unwrap();
    assert!(!sweep.baseline);
    assert_eq!((sweep.records, sweep.unchanged), (39, 39));
    // 0.1.0's index kept no record lengths; that sweep gave them, so the next one takes its
    // unchanged records by hashing them in place.
    let mut index = p.store.index("referrals").unwrap();
    for item in p.store.records("referrals").unwrap().iter() {
        let (id, record) = item.unwrap();
        let lengths = partnerwatch::store::Seen::Known(record.hash, record.raw.len());
        assert_eq!(index.see(&id), lengths, "{id}");
    }
    let record_events: Vec<_> = sweep
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                EventKind::ReferralNew | EventKind::ReferralChanged | EventKind::ReferralRemoved
            )
        })
        .collect();
    assert!(record_events.is_empty(), "{record_events:?}");
}
