//! Guarantee 5 against far ends that echo: every peer here quotes the request back in its
//! error — the webhook and Teams URLs with their keys, the Telegram bot token in its path, the
//! Partner Center bearer token — and no secret may reach the logs (text and JSON), `outbox
//! --dead`, the admin channel's messages, or any file of the state folder.

mod common;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use partnerwatch::sim::{Fault, FaultAction};
use std::path::Path;

const HOOK_KEY: &str = "hook-key-5f1d2c9a8b7e";
const TEAMS_SIG: &str = "teams-sig-0a9b8c7d6e5f";
const BOT_TOKEN: &str = "123456789:AAHsecretbottokenABCDEFGHIJKLMNOPQRS";
const API_TOKEN: &str = "api-token-77aa66bb55cc";
const SMTP_PASS: &str = "smtp-pass-3e4f5a6b7c8d";

/// An SMTP server that refuses every AUTH quoting the line it was sent — the base64 of the
/// user name and password — as some servers do. Returns its port.
fn smtp_echo() -> u16 {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut out = stream.try_clone().unwrap();
                let _ = out.write_all(b"220 echo.test ESMTP\r\n");
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { return };
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let answer = match verb.as_str() {
                        "EHLO" | "HELO" => "250-echo.test\r\n250 AUTH PLAIN LOGIN\r\n".to_string(),
                        "AUTH" => format!("535 5.7.8 Authentication failed for {line}\r\n"),
                        "QUIT" => {
                            let _ = out.write_all(b"221 bye\r\n");
                            return;
                        }
                        _ => "250 ok\r\n".to_string(),
                    };
                    if out.write_all(answer.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Answers every request with an error that quotes its path, query and Authorization header.
async fn echo(uri: Uri, headers: HeaderMap) -> axum::response::Response {
    let auth = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let quoted = format!("Cannot POST {uri} (Authorization: {auth})");
    if uri.path().starts_with("/bot") {
        let body = serde_json::json!({"ok": false, "error_code": 400, "description": format!("Bad Request: {quoted}")});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    (StatusCode::INTERNAL_SERVER_ERROR, quoted).into_response()
}

/// Everything a command printed, standard output and error together.
fn partnerwatch(config: &Path, args: &[&str]) -> String {
    let (_, out, err) = common::partnerwatch(config, args);
    out + &err
}

/// Every file below `dir`, as bytes.
fn files(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
        }
    }
}

#[test]
fn secrets_echoed_by_far_ends_reach_no_log_listing_message_or_state_file() {
    let (rt, sim) = common::sim_runtime_with(partnerwatch::sim::SimConfig {
        referrals: 20,
        page_size: 10,
        token: API_TOKEN.to_string(),
        start: jiff::Timestamp::now(),
        ..Default::default()
    });
    let peer = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(echo);
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}")
    });
    let smtp = smtp_echo();
    let dir = tempfile::tempdir().unwrap();
    let config = common::write_config(dir.path(), &sim, "    failing_after: 1\n");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text
        .replace(
            "channels:\n",
            &format!(
                "channels:\n  hook: {{ type: webhook, url: \"{peer}/hook?key={HOOK_KEY}\" }}\n  teams: {{ type: teams, webhook_url: \"{peer}/workflows/abc/triggers?sig={TEAMS_SIG}\" }}\n  chat: {{ type: telegram, bot_token: \"{BOT_TOKEN}\", chat_id: \"-100123\", api_url: \"{peer}/\" }}\n  mail: {{ type: email, smtp_url: \"smtp://pw:{SMTP_PASS}@127.0.0.1:{smtp}\", from: \"pw@example.com\", to: [ops@example.com] }}\n"
            ),
        )
        .replace("delivery:\n", "delivery:\n  max_attempts: 1\n");
    std::fs::write(&config, &text).unwrap();
    std::fs::write(
        dir.path().join("rules/all.yaml"),
        "- name: arrivals\n  on: referral.new\n  channels: [hook, teams, chat, mail]\n  template: any\n- name: admin\n  on: system.*\n  channels: [inbox]\n  template: any\n",
    )
    .unwrap();

    let mut seen = String::new();
    seen += &partnerwatch(&config, &["poll"]);
    sim.state().add_referrals(1);
    // The four channels fail for good, quoting what they were sent; each dead letter is
    // announced to the admin inbox.
    seen += &partnerwatch(&config, &["--log-format", "json", "poll"]);
    // The Referrals API fails quoting the bearer token: `system.source_failing` for the admin.
    sim.state().add_fault(Fault {
        page: Some(1),
        action: FaultAction::Echo { status: 500 },
        times: 20,
    });
    seen += &partnerwatch(&config, &["poll"]);
    seen += &partnerwatch(&config, &["--log-format", "json", "poll"]);
    let dead = partnerwatch(&config, &["outbox", "--dead"]);
    seen += &dead;

    // The far ends did echo, and what they said was kept — with the secrets scrubbed.
    assert!(dead.contains("Cannot POST"), "{dead}");
    assert!(
        dead.contains("Authentication failed for AUTH PLAIN"),
        "the SMTP server's echo is kept: {dead}"
    );
    assert!(dead.contains("***"), "{dead}");
    assert!(
        seen.contains("cannot serve GET"),
        "the API's echo is reported: {seen}"
    );
    let mut state = Vec::new();
    files(dir.path(), &mut state);
    let inbox: Vec<&(String, Vec<u8>)> =
        state.iter().filter(|(p, _)| p.contains("inbox")).collect();
    assert!(
        inbox.len() >= 5,
        "four dead letters and a failing source reached the admin inbox"
    );
    // What an SMTP server sees of the password: AUTH PLAIN's "\0user\0pass" and AUTH LOGIN's
    // password, in base64.
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let plain = b64.encode(format!("\0pw\0{SMTP_PASS}"));
    let login = b64.encode(SMTP_PASS);
    for secret in [
        HOOK_KEY,
        TEAMS_SIG,
        BOT_TOKEN,
        API_TOKEN,
        &BOT_TOKEN[10..],
        SMTP_PASS,
        &plain,
        &login,
    ] {
        assert!(
            !seen.contains(secret),
            "{secret} in the output and logs:\n{seen}"
        );
        for (path, bytes) in &state {
            if path.ends_with("pw.yaml") || path.ends_with("partnerwatch.yaml") {
                continue; // the configuration itself holds them, of course
            }
            let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
            assert!(!found, "{secret} in {path}");
        }
    }
}
