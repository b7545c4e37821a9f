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

/// A Bot API stand-in whose `getUpdates` always answers 409 (another process polls the bot).
async fn conflicted(
    State(api): State<BotApi>,
    UrlPath((token, method)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if method.eq_ignore_ascii_case("getUpdates") {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let body = json!({"ok": false, "error_code": 409, "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"});
        return (axum::http::StatusCode::CONFLICT, Json(body)).into_response();
    }
    bot_api(State(api), UrlPath((token, method)), body)
        .await
        .into_response()
}

/// A running `partnerwatch run` whose Telegram channel `sales-chat` talks to `api`.
struct Running {
    rt: tokio::runtime::Runtime,
    sim: partnerwatch::sim::Simulator,
    _dir: tempfile::TempDir,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    port: u16,
    child: std::process::Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(api: &BotApi, conflict: bool) -> Running {
    let (rt, sim) = common::sim_runtime_now(20, 10);
    let base = rt.block_on(async {
        let app = if conflict {
            axum::Router::new().route("/{token}/{method}", axum::routing::post(conflicted))
        } else {
            axum::Router::new().route("/{token}/{method}", axum::routing::post(bot_api))
        }
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
    let child = common::start_run(&config, &log, || {
        common::healthz(&rt, port)
            .is_some_and(|(_, b)| b["sources"]["referrals"]["last_complete_sweep"].is_string())
    });
    Running {
        rt,
        sim,
        _dir: dir,
        config,
        log,
        port,
        child,
    }
}

/// A new incoming referral, waiting for an answer, and the buttons of its message.
fn arrival(r: &Running, api: &BotApi) -> (String, Vec<(String, String)>) {
    let id = r.sim.state().add_referrals(1).remove(0);
    r.sim.state().patch_referral(
        &id,
        &json!({"status": "New", "substatus": "Pending", "direction": "Incoming"}),
    );
    let ours = |c: &Value| buttons(c).iter().any(|(_, u)| u.contains(&id));
    common::wait_for(
        "the referral's message",
        &r.log,
        Duration::from_secs(30),
        || api.calls("sendMessage").iter().any(ours),
    );
    let sent = api.calls("sendMessage").into_iter().find(ours).unwrap();
    (id, buttons(&sent))
}

/// The callback data of the last button offered in an edit whose text starts with `text`.
fn offered(api: &BotApi, text: &str) -> Option<String> {
    api.calls("editMessageReplyMarkup")
        .iter()
        .flat_map(buttons)
        .rfind(|(t, _)| t.starts_with(text))
        .map(|(_, d)| d)
}

#[test]
fn a_press_in_telegram_accepts_once_only_for_an_allowed_person_and_the_buttons_say_so() {
    let api = BotApi::default();
    let running = start(&api, false);
    let (sim, log) = (&running.sim, &running.log);

    // A referral arrives: its message carries Accept and Decline, and the link.
    let (id, shown) = arrival(&running, &api);
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
    common::wait_for("the refusal", log, Duration::from_secs(20), || {
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
    common::wait_for("the question", log, Duration::from_secs(20), || {
        offered(&api, "Yes").is_some()
    });
    let question = api
        .calls("answerCallbackQuery")
        .into_iter()
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .find(|t| t.starts_with("Accept "))
        .expect("Accept …? asked");
    assert!(question.ends_with('?'), "{question}");
    assert_eq!(sim.state().stats.patches, 0, "not before Yes");
    let yes = offered(&api, "Yes").unwrap();

    // Yes, twice in a row (a double press): one PATCH.
    api.press(ALICE, "alice", &yes);
    api.press(ALICE, "alice", &yes);
    common::wait_for(
        "the outcome on the buttons",
        log,
        Duration::from_secs(30),
        || offered(&api, "Accepted by @alice").is_some(),
    );
    common::wait_for(
        "both presses answered",
        log,
        Duration::from_secs(20),
        || {
            api.calls("answerCallbackQuery")
                .iter()
                .any(|c| c["text"].as_str().is_some_and(|t| t.contains("already")))
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
    // While `run` holds the state, `referral show` is answered by the daemon.
    let (ok, shown, err) = common::partnerwatch(&running.config, &["referral", "show", &id]);
    assert!(ok, "{err}");
    assert!(shown.contains("Active/Accepted"), "{shown}");

    // A private chat with someone not allowed is not answered at all.
    let mut stranger = message(90, "/help");
    stranger["chat"] = json!({"id": 555, "type": "private", "first_name": "Mallory"});
    stranger["from"] = json!({"id": MALLORY, "is_bot": false, "first_name": "Mallory"});
    api.push(json!({ "message": stranger }));
    // /help answers in the chat, with the asker's id.
    api.say(ALICE, "/help");
    common::wait_for("the help", log, Duration::from_secs(20), || {
        api.calls("sendMessage").iter().any(|c| {
            c["text"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("<code>{ALICE}</code>")))
        })
    });

    assert!(
        api.calls("sendMessage").iter().all(|c| c["chat_id"] != 555),
        "answered in a chat that is not allowed"
    );

    // Declining asks why (a common reason, or one typed), then asks to confirm, then sends
    // Partner Center's statusReason.
    let (other, shown) = arrival(&running, &api);
    let decline = shown
        .iter()
        .find(|(t, _)| t.contains("Decline"))
        .map(|(_, d)| d.clone())
        .unwrap();
    api.press(ALICE, "alice", &decline);
    common::wait_for("the reasons", log, Duration::from_secs(20), || {
        offered(&api, "Budget cut").is_some()
    });
    api.press(ALICE, "alice", &offered(&api, "Budget cut").unwrap());
    common::wait_for("the second question", log, Duration::from_secs(20), || {
        offered(&api, "Yes: decline").is_some()
    });
    assert_eq!(sim.state().stats.patches, 1, "not before Yes");
    api.press(ALICE, "alice", &offered(&api, "Yes: decline").unwrap());
    let declined = || {
        sim.state()
            .referrals()
            .iter()
            .find(|r| r["id"] == other.as_str())
            .unwrap()
            .clone()
    };
    common::wait_for("the decline", log, Duration::from_secs(20), || {
        declined()["substatus"] == "Declined"
    });
    assert_eq!(declined()["statusReason"], "Budget cut");
    assert_eq!(sim.state().stats.patches, 2);

    // /expiring lists what is still to be answered, most urgent first.
    api.say(ALICE, "/expiring");
    common::wait_for("the expiring list", log, Duration::from_secs(20), || {
        api.calls("sendMessage")
            .iter()
            .any(|c| c["text"].as_str().is_some_and(|t| t.starts_with('⏰')))
    });
    let listed = api
        .calls("sendMessage")
        .into_iter()
        .filter_map(|c| c["text"].as_str().map(str::to_string))
        .find(|t| t.starts_with('⏰'))
        .unwrap();
    assert!(
        !listed.contains(&id) && !listed.contains(&other),
        "answered ones are not listed: {listed}"
    );

    // The listener reports on /healthz; the event log holds the refused and the done press.
    let (_, health) = common::healthz(&running.rt, running.port).unwrap();
    assert_eq!(health["telegram_listener"]["ok"], true, "{health}");
    assert!(
        health["telegram_listener"]["refused"].as_u64().unwrap() >= 1,
        "{health}"
    );
    let (ok, out, err) = common::partnerwatch(
        &running.config,
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
    let logged = std::fs::read_to_string(log).unwrap();
    assert!(!logged.contains("SECRET-token"), "the bot token in the log");
}

#[test]
fn a_telegram_conflict_is_reported_and_sweeps_and_deliveries_go_on() {
    let api = BotApi::default();
    let running = start(&api, true);
    let (rt, port, log) = (&running.rt, running.port, &running.log);
    common::wait_for(
        "the listener's trouble on /healthz",
        log,
        Duration::from_secs(20),
        || common::healthz(rt, port).is_some_and(|(_, b)| b["telegram_listener"]["ok"] == false),
    );
    let (_, health) = common::healthz(rt, port).unwrap();
    assert!(
        health["telegram_listener"]["error"]
            .as_str()
            .unwrap()
            .contains("terminated by other getUpdates"),
        "{health}"
    );
    // A referral still arrives in the chat, with its buttons: the listener's trouble holds
    // back neither the sweeps nor the deliveries.
    let (id, shown) = arrival(&running, &api);
    assert!(shown.iter().any(|(_, u)| u.contains(&id)));
    let metrics = rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        metrics.contains("partnerwatch_telegram_listener_ok 0"),
        "{metrics}"
    );
}
