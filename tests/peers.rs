//! Teams, Telegram and email against real peers on loopback: a capture server speaking the
//! Workflows webhook and the Telegram Bot API, and an in-process SMTP server.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use jiff::SignedDuration;
use partnerwatch::clock::Clock;
use partnerwatch::model::DeliveryStatus;
use serde_json::{json, Value};

/// The customer name every test sends: everything that breaks naive messages.
const HOSTILE: &str = "O'Brien & \"Sons\" <script>alert(1)</script> **bold** _x_ 🎉\nsecond line";

/// A config with one channel (YAML flow mapping) and a rule sending new referrals to it.
fn config(
    dir: &std::path::Path,
    sim: &partnerwatch::sim::Simulator,
    channel: &str,
) -> std::path::PathBuf {
    let path = common::write_config(dir, sim, "");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("channels:\n", &format!("channels:\n  peer: {channel}\n"));
    std::fs::write(&path, text).unwrap();
    std::fs::write(
        dir.join("rules/all.yaml"),
        "- name: arrivals\n  on: referral.new\n  channels: [peer]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("templates/referral_new.text.hbs"),
        "New referral: {{record.customerProfile.name}}\nId: {{entity_id}}\n{{#if record.details.notes}}Notes: {{record.details.notes}}\n{{/if}}",
    )
    .unwrap();
    path
}

/// Baseline, then one new referral named [`HOSTILE`]; returns its id.
async fn one_hostile_arrival(
    p: &partnerwatch::pipeline::Pipeline,
    sim: &partnerwatch::sim::Simulator,
) -> String {
    p.poll(&p.sources[0], false).await.unwrap();
    let id = {
        let mut s = sim.state();
        let id = s.add_referrals(1).remove(0);
        s.patch_referral(
            &id,
            &json!({"customerProfile": {"name": HOSTILE},
                    "details": {"notes": "Please log in at [Partner Center](http://evil.example/login)\n- Teams Phone\n**urgent**"}}),
        );
        id
    };
    p.poll(&p.sources[0], false).await.unwrap();
    id
}

type Log = Arc<Mutex<Vec<(String, Value)>>>;

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn teams_gets_a_valid_adaptive_card_in_the_workflows_envelope() {
    let log: Log = Arc::default();
    let app =
        axum::Router::new()
            .route(
                "/workflows/{sig}",
                axum::routing::post(
                    |State(log): State<Log>,
                     UrlPath(sig): UrlPath<String>,
                     body: axum::body::Bytes| async move {
                        log.lock().unwrap().push((
                            sig,
                            serde_json::from_slice(&body).expect("Teams body is JSON"),
                        ));
                        StatusCode::ACCEPTED
                    },
                ),
            )
            .with_state(Arc::clone(&log));
    let base = serve(app).await;
    let sim = common::sim(5, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &sim,
        &format!("{{ type: teams, webhook_url: \"{base}/workflows/sig-s3cret\" }}"),
    );
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    let id = one_hostile_arrival(&p, &sim).await;

    assert_eq!(p.deliver().await.unwrap().sent, 1, "202 means accepted");
    let log = log.lock().unwrap();
    let (sig, body) = &log[0];
    assert_eq!(sig, "sig-s3cret");
    assert_eq!(body["type"], "message");
    let attachment = &body["attachments"][0];
    assert_eq!(
        attachment["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    let card = &attachment["content"];
    assert_eq!(card["type"], "AdaptiveCard");
    assert_eq!(card["version"], "1.4");
    let blocks = card["body"].as_array().unwrap();
    // Guarantee 7: Teams reads a TextBlock's text as Markdown. Whatever is in one must parse
    // to no link, emphasis, list or heading; customer text rides in TextRuns, which Teams
    // shows as they are.
    let facts: Vec<(&str, &str)> = blocks
        .iter()
        .filter(|b| b["type"] == "FactSet")
        .flat_map(|b| b["facts"].as_array().unwrap())
        .map(|f| (f["title"].as_str().unwrap(), f["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        facts,
        vec![("Id", id.as_str())],
        "the template's `Id:` line is a fact"
    );
    let markdown = blocks
        .iter()
        .filter(|b| b["type"] == "TextBlock")
        .map(|b| b["text"].as_str().unwrap())
        .chain(facts.iter().flat_map(|(t, v)| [*t, *v]));
    for text in markdown {
        for event in pulldown_cmark::Parser::new(text) {
            use pulldown_cmark::{Event, Tag};
            assert!(
                !matches!(
                    event,
                    Event::Start(
                        Tag::Link { .. }
                            | Tag::Strong
                            | Tag::Emphasis
                            | Tag::Item
                            | Tag::Heading { .. }
                    )
                ),
                "{event:?} in a Markdown block: {text:?}"
            );
        }
    }
    let runs: Vec<&str> = blocks
        .iter()
        .filter(|b| b["type"] == "RichTextBlock")
        .flat_map(|b| b["inlines"].as_array().unwrap())
        .filter(|r| r["type"] == "TextRun")
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert!(
        runs[0].contains(HOSTILE.lines().next().unwrap()),
        "the name, literally, in the title: {runs:?}"
    );
    assert!(
        runs.iter()
            .any(|r| r.contains("[Partner Center](http://evil.example/login)")),
        "{runs:?}"
    );
    assert!(
        runs.len() > 3,
        "one block per line, not one run-on paragraph: {runs:?}"
    );
    // The one button: our link to the referral, not one found in the record.
    let actions = card["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["type"], "Action.OpenUrl");
    assert_eq!(
        actions[0]["url"],
        partnerwatch::config::DEFAULT_REFERRAL_LINK.replace("{id}", &id)
    );
    assert!(
        !card.to_string().contains("\"url\":\"http://evil"),
        "{card}"
    );
    assert!(body.to_string().len() < 28 * 1024);
}

/// A Telegram Bot API stand-in: `sendMessage` answers 429 `retry_after` as scripted, then ok.
#[derive(Clone, Default)]
struct BotApi {
    log: Log,
    throttle: Arc<Mutex<Vec<u64>>>,
}

async fn bot_api(
    State(api): State<BotApi>,
    UrlPath((token, method)): UrlPath<(String, String)>,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let body: Value = serde_json::from_slice(&body).expect("Bot API body is JSON");
    api.log
        .lock()
        .unwrap()
        .push((format!("{token}/{method}"), body.clone()));
    if let Some(secs) = {
        let mut t = api.throttle.lock().unwrap();
        if t.is_empty() {
            None
        } else {
            Some(t.remove(0))
        }
    } {
        let answer = json!({"ok": false, "error_code": 429, "description": format!("Too Many Requests: retry after {secs}"), "parameters": {"retry_after": secs}});
        return (StatusCode::TOO_MANY_REQUESTS, axum::Json(answer));
    }
    let answer = json!({"ok": true, "result": {
        "message_id": 17, "date": 1_763_884_800,
        "chat": {"id": body["chat_id"], "type": "supergroup", "title": "Sales"},
        "text": "ok"
    }});
    (StatusCode::OK, axum::Json(answer))
}

/// Tags in Telegram HTML: only the ones partnerwatch writes, balanced.
fn tags(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("every < opens a tag") + start;
        out.push(rest[start..=end].to_string());
        rest = &rest[end + 1..];
    }
    out
}

#[tokio::test]
async fn telegram_gets_escaped_html_and_its_retry_after_is_honoured() {
    let api = BotApi {
        throttle: Arc::new(Mutex::new(vec![7])),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/{token}/{method}", axum::routing::post(bot_api))
        .with_state(api.clone());
    let base = serve(app).await;
    let sim = common::sim(5, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &sim,
        &format!("{{ type: telegram, bot_token: \"123456:SECRET-token\", chat_id: \"-1001234567890\", api_url: \"{base}\" }}"),
    );
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    let id = one_hostile_arrival(&p, &sim).await;

    let first = p.deliver().await.unwrap();
    assert_eq!(first.retrying, 1);
    let pending = p.store.deliveries(Some(DeliveryStatus::Pending)).unwrap();
    assert_eq!(
        pending[0].next_attempt_at,
        clock.now() + SignedDuration::from_secs(7)
    );
    assert!(
        !pending[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("SECRET-token"),
        "{:?}",
        pending[0].last_error
    );
    clock.advance(SignedDuration::from_secs(8));
    assert_eq!(p.deliver().await.unwrap().sent, 1);

    let log = api.log.lock().unwrap();
    assert_eq!(log.len(), 2);
    let (path, body) = &log[1];
    assert!(
        path.eq_ignore_ascii_case("bot123456:SECRET-token/sendMessage"),
        "{path}"
    );
    assert_eq!(body["chat_id"], -1001234567890i64);
    assert_eq!(body["parse_mode"], "HTML");
    let text = body["text"].as_str().unwrap();
    let link = partnerwatch::config::DEFAULT_REFERRAL_LINK.replace("{id}", &id);
    assert_eq!(
        tags(text),
        vec![
            "<b>".to_string(),
            "</b>".to_string(),
            format!("<a href=\"{link}\">"),
            "</a>".to_string()
        ],
        "bold title and our link, no tag from the customer: {text}"
    );
    assert!(text.contains("O&#39;Brien &amp; &quot;Sons&quot; &lt;script&gt;alert(1)&lt;/script&gt; **bold** _x_ 🎉"), "{text}");
    assert!(text.chars().count() <= 4096);
}

#[tokio::test]
async fn email_arrives_over_smtp_as_text_and_html() {
    let (port, mailbox) = common::smtp_server();

    let sim = common::sim(5, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &sim,
        &format!("{{ type: email, smtp_url: \"smtp://127.0.0.1:{port}\", from: \"Partner Watch <pw@contoso.example>\", to: [sales@contoso.example, \"Lead <lead@contoso.example>\"] }}"),
    );
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    let id = one_hostile_arrival(&p, &sim).await;
    assert_eq!(p.deliver().await.unwrap().sent, 1);

    let raw = mailbox.messages()[0].clone();
    let mail = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("a MIME message");
    assert_eq!(
        mail.subject().unwrap(),
        "New referral: O'Brien & \"Sons\" <script>alert(1)</script> **bold** _x_ 🎉 second line",
        "the name's line break is folded: the subject is one line, and all of it"
    );
    let to: Vec<&str> = mail
        .to()
        .unwrap()
        .iter()
        .filter_map(|a| a.address())
        .collect();
    assert_eq!(to, vec!["sales@contoso.example", "lead@contoso.example"]);
    // A machine's message, dated, with an id of its own: no auto-replies to it.
    let message_id = mail.message_id().expect("Message-ID");
    assert!(
        message_id.starts_with("partnerwatch.") && message_id.contains('@'),
        "{message_id}"
    );
    assert!(mail.date().is_some(), "Date");
    let header = |name: &str| {
        mail.header_raw(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("Auto-Submitted"), "auto-generated");
    assert_eq!(header("X-Auto-Response-Suppress"), "All");
    let headers = String::from_utf8_lossy(&raw).to_lowercase();
    assert!(
        headers.contains("content-type: multipart/alternative"),
        "{headers}"
    );
    let text = mail.body_text(0).unwrap();
    assert!(
        text.contains(HOSTILE.lines().nth(1).unwrap()) && text.contains(&id),
        "{text}"
    );
    let html = mail.body_html(0).unwrap();
    assert!(
        html.contains("&lt;script&gt;") && !html.contains("<script>"),
        "{html}"
    );
}

/// A minimal SMTP server that offers only XOAUTH2 and keeps what the client signed in with.
async fn xoauth2_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 mail.test ESMTP\r\n").await.unwrap();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                }
                continue;
            }
            let upper = line.to_ascii_uppercase();
            let answer: &[u8] = if upper.starts_with("EHLO") {
                b"250-mail.test\r\n250 AUTH XOAUTH2\r\n"
            } else if upper.starts_with("AUTH XOAUTH2 ") {
                use base64::Engine;
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(&line[13..])
                    .unwrap();
                log.lock()
                    .unwrap()
                    .push(String::from_utf8(decoded).unwrap());
                b"235 2.7.0 Authentication successful\r\n"
            } else if upper.starts_with("DATA") {
                in_data = true;
                b"354 go ahead\r\n"
            } else if upper.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await.unwrap();
                break;
            } else {
                b"250 2.1.0 ok\r\n"
            };
            write.write_all(answer).await.unwrap();
        }
    });
    (port, seen)
}

#[tokio::test]
async fn email_signs_in_with_xoauth2_when_configured() {
    let (port, seen) = xoauth2_server().await;
    let sim = common::sim(5, 10).await;
    let dir = tempfile::tempdir().unwrap();
    let path = config(
        dir.path(),
        &sim,
        &format!("{{ type: email, smtp_url: \"smtp://127.0.0.1:{port}\", from: pw@contoso.example, to: [sales@contoso.example], oauth_user: pw@contoso.example }}"),
    );
    let clock = common::clock();
    let p = common::pipeline(&path, &clock);
    one_hostile_arrival(&p, &sim).await;
    assert_eq!(p.deliver().await.unwrap().sent, 1);
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen.as_slice(),
        [format!(
            "user=pw@contoso.example\u{1}auth=Bearer {}\u{1}\u{1}",
            sim.token()
        )]
    );
}
