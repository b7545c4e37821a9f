//! Acting from Telegram (issue 13, DESIGN §6 guarantee 8): a real `partnerwatch run` against
//! the simulator and a Bot API stand-in on loopback that serves `getUpdates` (long polling)
//! with the button presses and messages the test scripts, and records `sendMessage`,
//! `answerCallbackQuery` and `editMessageReplyMarkup`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::Json;
use serde_json::{json, Value};

const CHAT: i64 = -1001234567890;
const ALICE: i64 = 111;
const MALLORY: i64 = 999;

#[derive(Clone, Default)]
struct BotApi {
    /// Updates waiting to be fetched.
    queue: Arc<Mutex<Vec<Value>>>,
    /// Every call: (method, body).
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    next_update: Arc<Mutex<i64>>,
}

impl BotApi {
    fn push(&self, mut update: Value) {
        let mut n = self.next_update.lock().unwrap();
        *n += 1;
        update["update_id"] = json!(*n);
        self.queue.lock().unwrap().push(update);
    }

    fn calls(&self, method: &str) -> Vec<Value> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m.eq_ignore_ascii_case(method))
            .map(|(_, b)| b.clone())
            .collect()
    }

    fn press(&self, from: i64, username: &str, data: &str) {
        self.push(json!({"callback_query": {
            "id": format!("cb{}", rand_id()),
            "from": {"id": from, "is_bot": false, "first_name": username, "username": username},
            "message": message(17, "New referral"),
            "chat_instance": "ci",
            "data": data,
        }}));
    }

    fn say(&self, from: i64, text: &str) {
        let mut m = message(40 + rand_id() as i64 % 1000, text);
        m["from"] =
            json!({"id": from, "is_bot": false, "first_name": "Alice", "username": "alice"});
        self.push(json!({ "message": m }));
    }
}

fn rand_id() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn message(id: i64, text: &str) -> Value {
    json!({"message_id": id, "date": 1_763_884_800,
           "chat": {"id": CHAT, "type": "supergroup", "title": "Sales"}, "text": text})
}

async fn bot_api(
    State(api): State<BotApi>,
    UrlPath((_token, method)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    api.calls
        .lock()
        .unwrap()
        .push((method.clone(), body.clone()));
    match method.to_ascii_lowercase().as_str() {
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            for _ in 0..10 {
                let ready: Vec<Value> = api
                    .queue
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|u| u["update_id"].as_i64().unwrap() >= offset)
                    .cloned()
                    .collect();
                if !ready.is_empty() {
                    return Json(json!({"ok": true, "result": ready}));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Json(json!({"ok": true, "result": []}))
        }
        "answercallbackquery" => Json(json!({"ok": true, "result": true})),
        _ => Json(json!({"ok": true, "result": message(17, "ok")})),
    }
}

/// The buttons of a `sendMessage` or `editMessageReplyMarkup` call: (text, callback data or url).
fn buttons(call: &Value) -> Vec<(String, String)> {
    call["reply_markup"]["inline_keyboard"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|row| row.as_array().unwrap().clone())
        .map(|b| {
            let target = b["callback_data"]
                .as_str()
                .or(b["url"].as_str())
                .unwrap_or_default()
                .to_string();
            (b["text"].as_str().unwrap_or_default().to_string(), target)
        })
        .collect()
}

#[test]
fn a_press_in_telegram_accepts_once_only_for_an_allowed_person_and_the_buttons_say_so() {
    let (rt, sim) = common::sim_runtime_now(20, 10);
    let api = BotApi::default();
    let base = rt.block_on(async {
        let app = axum::Router::new()
            .route("/{token}/{method}", axum::routing::post(bot_api))
            .with_state(api.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "");
    let port = common::free_port();
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "channels:\n",
        &format!("channels:\n  sales-chat: {{ type: telegram, bot_token: \"123456:SECRET-token\", chat_id: \"{CHAT}\", api_url: \"{base}\" }}\n"),
    );
    let extra = format!("listen: 127.0.0.1:{port}\nactions:\n  telegram:\n    channel: sales-chat\n    allow: [{ALICE}]\n  confirm: true\n");
    std::fs::write(&config, format!("{extra}{text}")).unwrap();
    std::fs::write(
        dir.path().join("rules/chat.yaml"),
        "- name: chat\n  on: referral.new\n  channels: [sales-chat]\n  template: any\n",
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let mut child = common::start_run(&config, &log, || {
        common::healthz(&rt, port)
            .is_some_and(|(_, b)| b["sources"]["referrals"]["last_complete_sweep"].is_string())
    });

    // A referral arrives: its message carries Accept and Decline, and the link.
    let id = sim.state().add_referrals(1).remove(0);
    sim.state().patch_referral(
        &id,
        &json!({"status": "New", "substatus": "Pending", "direction": "Incoming"}),
    );
    common::wait_for(
        "the referral's message",
        &log,
        Duration::from_secs(30),
        || {
            api.calls("sendMessage")
                .iter()
                .any(|c| !buttons(c).is_empty())
        },
    );
    let sent = api
        .calls("sendMessage")
        .into_iter()
        .find(|c| !buttons(c).is_empty())
        .unwrap();
    let shown = buttons(&sent);
    let accept = shown
        .iter()
        .find(|(t, _)| t.contains("Accept"))
        .map(|(_, d)| d.clone())
        .expect("an Accept button");
    assert!(
        shown.iter().any(|(t, _)| t.contains("Decline")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|(t, u)| t == "Open in Partner Center" && u.contains(&id)),
        "{shown:?}"
    );
    // The button carries an opaque id, never the referral's id or the verb in clear.
    assert!(
        !accept.contains(&id) && !accept.contains("accept"),
        "{accept}"
    );

    // Someone not on the allow-list presses it: told so, nothing sent, an event.
    api.press(MALLORY, "mallory", &accept);
    common::wait_for("the refusal", &log, Duration::from_secs(20), || {
        api.calls("answerCallbackQuery")
            .iter()
            .any(|c| c["text"] == "you are not allowed to act on referrals")
    });
    assert_eq!(
        sim.state().stats.patches,
        0,
        "nothing sent for a refused press"
    );

    // Alice presses it: asked first.
    api.press(ALICE, "alice", &accept);
    common::wait_for("the question", &log, Duration::from_secs(20), || {
        api.calls("editMessageReplyMarkup")
            .iter()
            .any(|c| buttons(c).iter().any(|(t, _)| t.starts_with("Yes")))
    });
    let question = api
        .calls("answerCallbackQuery")
        .into_iter()
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .find(|t| t.starts_with("Accept "))
        .expect("Accept …? asked");
    assert!(question.ends_with('?'), "{question}");
    assert_eq!(sim.state().stats.patches, 0, "not before Yes");
    let yes = api
        .calls("editMessageReplyMarkup")
        .iter()
        .flat_map(buttons)
        .find(|(t, _)| t.starts_with("Yes"))
        .map(|(_, d)| d)
        .unwrap();

    // Yes, twice in a row (a double press): one PATCH.
    api.press(ALICE, "alice", &yes);
    api.press(ALICE, "alice", &yes);
    common::wait_for(
        "the outcome on the buttons",
        &log,
        Duration::from_secs(30),
        || {
            api.calls("editMessageReplyMarkup").iter().any(|c| {
                buttons(c)
                    .iter()
                    .any(|(t, _)| t.starts_with("Accepted by @alice"))
            })
        },
    );
    common::wait_for(
        "both presses answered",
        &log,
        Duration::from_secs(20),
        || {
            api.calls("answerCallbackQuery")
                .iter()
                .any(|c| c["text"].as_str().is_some_and(|t| t.contains("already")))
                || api.calls("answerCallbackQuery").len() >= 5
        },
    );
    let r = sim
        .state()
        .referrals()
        .iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (r["status"].as_str(), r["substatus"].as_str()),
        (Some("Active"), Some("Accepted"))
    );
    assert_eq!(sim.state().stats.patches, 1, "one PATCH for a double press");

    // /help answers in the chat, with the asker's id.
    api.say(ALICE, "/help");
    common::wait_for("the help", &log, Duration::from_secs(20), || {
        api.calls("sendMessage").iter().any(|c| {
            c["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("<code>{ALICE}</code>")))
        })
    });

    // The listener reports on /healthz; the event log holds the refused and the done press.
    let (_, health) = common::healthz(&rt, port).unwrap();
    assert_eq!(health["telegram_listener"]["ok"], true, "{health}");
    assert!(
        health["telegram_listener"]["refused"].as_u64().unwrap() >= 1,
        "{health}"
    );
    let (ok, out, err) = common::partnerwatch(
        &config,
        &[
            "events",
            "--json",
            "--kind",
            "referral.acted",
            "--since",
            "1d",
        ],
    );
    assert!(ok, "{err}");
    let results: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|e| {
            format!(
                "{} {}",
                e["data"]["result"].as_str().unwrap(),
                e["data"]["by"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        results.iter().any(|r| r.starts_with("refused @mallory")),
        "{results:?}"
    );
    assert!(
        results.iter().any(|r| r.starts_with("ok @alice")),
        "{results:?}"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(!logged.contains("SECRET-token"), "the bot token in the log");
    let _ = child.kill();
    let _ = child.wait();
}
