//! `/healthz` and `/metrics` for the daemon (`partnerwatch run`), on the `listen` address:
//! whether each source's sweeps succeed, what waits in the outbox, and Prometheus counters.
//! Must never: expose a record, a message or a secret — only counts and times.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jiff::Timestamp;
use serde_json::json;

use crate::store::Store;

/// What the daemon counts as it runs.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Per source: (complete sweeps, failed sweeps, failures in a row, last complete sweep).
    sources: BTreeMap<String, (u64, u64, u64, Option<Timestamp>)>,
    events: BTreeMap<String, u64>,
    sent: u64,
    dead: u64,
    /// Since when, and why, the state database cannot be written (a full disk, an I/O
    /// error); `None` while it works.
    storage: Option<(Timestamp, String)>,
    storage_failures: u64,
    /// The Telegram listener of `actions.telegram`, when it runs: its last error (`None`
    /// while it reaches Telegram), and the presses it took and refused.
    telegram: Option<Listener>,
}

#[derive(Debug, Default, Clone)]
struct Listener {
    error: Option<(Timestamp, String)>,
    presses: u64,
    refused: u64,
}

impl Metrics {
    pub fn sweep(&self, source: &str, ok: bool, events: &[crate::model::Event], now: Timestamp) {
        let mut m = self.inner.lock().expect("metrics");
        let s = m.sources.entry(source.to_string()).or_default();
        if ok {
            s.0 += 1;
            s.2 = 0;
            s.3 = Some(now);
        } else {
            s.1 += 1;
            s.2 += 1;
        }
        for e in events {
            *m.events.entry(e.kind.as_str().to_string()).or_default() += 1;
        }
    }

    /// Notes whether the state database works; a failure keeps the time it began.
    pub fn storage(&self, error: Option<String>, now: Timestamp) {
        let mut m = self.inner.lock().expect("metrics");
        match error {
            None => m.storage = None,
            Some(e) => {
                if m.storage.is_none() {
                    m.storage_failures += 1;
                }
                let since = m.storage.as_ref().map_or(now, |(t, _)| *t);
                m.storage = Some((since, e));
            }
        }
    }

    /// The Telegram listener reached Telegram (`None`), or could not (the error).
    pub fn listener(&self, error: Option<String>, now: Timestamp) {
        let mut m = self.inner.lock().expect("metrics");
        let l = m.telegram.get_or_insert_with(Listener::default);
        l.error = error.map(|e| {
            let since = l.error.as_ref().map_or(now, |(t, _)| *t);
            (since, e)
        });
    }

    /// A button was pressed, by someone allowed to act or not.
    pub fn press(&self, allowed: bool) {
        let mut m = self.inner.lock().expect("metrics");
        let l = m.telegram.get_or_insert_with(Listener::default);
        l.presses += 1;
        if !allowed {
            l.refused += 1;
        }
    }

    pub fn delivered(&self, sent: usize, dead: usize) {
        let mut m = self.inner.lock().expect("metrics");
        m.sent += sent as u64;
        m.dead += dead as u64;
    }
}

/// Runs one command of the command line on the daemon's state: its arguments as typed, the
/// answer as JSON, or an error to show. Given by the layer that knows the commands.
pub type RunCommand = Arc<
    dyn Fn(
            Vec<String>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<serde_json::Value, String>> + Send>,
        > + Send
        + Sync,
>;

/// The daemon's local API: commands that need the state it holds, for whoever has the token.
#[derive(Clone)]
pub struct LocalApi {
    pub token: String,
    pub run: RunCommand,
}

#[derive(Clone)]
struct Shared {
    metrics: Arc<Metrics>,
    store: Store,
    api: Option<LocalApi>,
}

/// Serves `/healthz` and `/metrics` on `listener` until the runtime stops, and the local API
/// on `route` when given.
pub fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    store: Store,
    api: Option<(&str, LocalApi)>,
) {
    let mut app = axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(prometheus));
    let api = api.map(|(route, api)| {
        app = std::mem::take(&mut app).route(route, axum::routing::post(command));
        api
    });
    let app = app.with_state(Shared {
        metrics,
        store,
        api,
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the health endpoint stopped");
        }
    });
}

#[derive(serde::Deserialize)]
struct CommandRequest {
    args: Vec<String>,
}

async fn command(
    State(s): State<Shared>,
    headers: axum::http::HeaderMap,
    axum::Json(request): axum::Json<CommandRequest>,
) -> Response {
    let Some(api) = s.api else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(given.as_bytes(), api.token.as_bytes()) {
        return (
            StatusCode::UNAUTHORIZED,
            "the token in the daemon file is needed",
        )
            .into_response();
    }
    match (api.run)(request.args).await {
        Ok(answer) => (StatusCode::OK, axum::Json(answer)).into_response(),
        Err(error) => (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": crate::config::secret::redact(&error) })),
        )
            .into_response(),
    }
}

/// Compares two tokens in a time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

async fn healthz(State(s): State<Shared>) -> Response {
    let m = s.metrics.inner.lock().expect("metrics");
    let sources: serde_json::Map<String, serde_json::Value> = m
        .sources
        .iter()
        .map(|(name, (_, _, in_row, last))| (name.clone(), json!({ "failures_in_a_row": in_row, "last_complete_sweep": last.map(|t| t.to_string()) })))
        .collect();
    let failing = m.sources.values().any(|(_, _, in_row, _)| *in_row > 0);
    let mut storage = m.storage.clone();
    let telegram = m.telegram.clone().map(|l| match l.error {
        None => json!({ "ok": true, "presses": l.presses, "refused": l.refused }),
        Some((since, error)) => json!({
            "ok": false,
            "since": since.to_string(),
            "error": crate::config::secret::redact(&error),
            "presses": l.presses,
            "refused": l.refused,
        }),
    });
    drop(m);
    let outbox = match s.store.outbox_counts() {
        Ok((pending, dead)) => json!({ "pending": pending, "dead": dead }),
        Err(e) => {
            storage.get_or_insert_with(|| (Timestamp::now(), e.to_string()));
            serde_json::Value::Null
        }
    };
    let dead = outbox["dead"].as_u64().unwrap_or(0);
    // A daemon that cannot write its state is not healthy: a probe should see it fail.
    let (code, status) = match (&storage, failing || dead > 0) {
        (Some(_), _) => (StatusCode::SERVICE_UNAVAILABLE, "failing"),
        (None, true) => (StatusCode::OK, "degraded"),
        (None, false) => (StatusCode::OK, "ok"),
    };
    let storage = match storage {
        None => json!({ "ok": true }),
        Some((since, error)) => json!({
            "ok": false,
            "since": since.to_string(),
            "error": crate::config::secret::redact(&error),
        }),
    };
    let body = json!({
        "status": status,
        "sources": sources,
        "outbox": outbox,
        "storage": storage,
        "telegram_listener": telegram,
    });
    (code, axum::Json(body)).into_response()
}

async fn prometheus(State(s): State<Shared>) -> Response {
    let counts = s.store.outbox_counts().ok();
    let m = s.metrics.inner.lock().expect("metrics");
    let mut out = String::new();
    let _ = writeln!(out, "# HELP partnerwatch_sweeps_total Sweeps by source and result.\n# TYPE partnerwatch_sweeps_total counter");
    for (name, (ok, failed, _, _)) in &m.sources {
        let _ = writeln!(
            out,
            "partnerwatch_sweeps_total{{source=\"{name}\",result=\"complete\"}} {ok}"
        );
        let _ = writeln!(
            out,
            "partnerwatch_sweeps_total{{source=\"{name}\",result=\"failed\"}} {failed}"
        );
    }
    let _ = writeln!(out, "# HELP partnerwatch_source_failures_in_a_row Failed sweeps since the last complete one.\n# TYPE partnerwatch_source_failures_in_a_row gauge");
    for (name, (_, _, in_row, _)) in &m.sources {
        let _ = writeln!(
            out,
            "partnerwatch_source_failures_in_a_row{{source=\"{name}\"}} {in_row}"
        );
    }
    let _ = writeln!(out, "# HELP partnerwatch_last_complete_sweep_seconds When the last complete sweep ended (Unix time).\n# TYPE partnerwatch_last_complete_sweep_seconds gauge");
    for (name, (_, _, _, last)) in &m.sources {
        if let Some(t) = last {
            let _ = writeln!(
                out,
                "partnerwatch_last_complete_sweep_seconds{{source=\"{name}\"}} {}",
                t.as_second()
            );
        }
    }
    let _ = writeln!(out, "# HELP partnerwatch_events_total Events detected since start, by kind.\n# TYPE partnerwatch_events_total counter");
    for (kind, n) in &m.events {
        let _ = writeln!(out, "partnerwatch_events_total{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP partnerwatch_deliveries_total Deliveries since start, by result.\n# TYPE partnerwatch_deliveries_total counter");
    let _ = writeln!(
        out,
        "partnerwatch_deliveries_total{{result=\"sent\"}} {}",
        m.sent
    );
    let _ = writeln!(
        out,
        "partnerwatch_deliveries_total{{result=\"dead\"}} {}",
        m.dead
    );
    if let Some((pending, dead)) = counts {
        let _ = writeln!(out, "# HELP partnerwatch_outbox Deliveries in the outbox now, by status.\n# TYPE partnerwatch_outbox gauge");
        let _ = writeln!(out, "partnerwatch_outbox{{status=\"pending\"}} {pending}");
        let _ = writeln!(out, "partnerwatch_outbox{{status=\"dead\"}} {dead}");
    }
    let _ = writeln!(out, "# HELP partnerwatch_storage_ok Whether the state database can be written (1) or not (0).\n# TYPE partnerwatch_storage_ok gauge");
    let _ = writeln!(
        out,
        "partnerwatch_storage_ok {}",
        u8::from(m.storage.is_none())
    );
    let _ = writeln!(out, "# HELP partnerwatch_storage_failures_total Times the state database stopped working since start.\n# TYPE partnerwatch_storage_failures_total counter");
    let _ = writeln!(
        out,
        "partnerwatch_storage_failures_total {}",
        m.storage_failures
    );
    if let Some(l) = &m.telegram {
        let _ = writeln!(out, "# HELP partnerwatch_telegram_listener_ok Whether the Telegram listener of actions.telegram reaches Telegram (1) or not (0).\n# TYPE partnerwatch_telegram_listener_ok gauge");
        let _ = writeln!(
            out,
            "partnerwatch_telegram_listener_ok {}",
            u8::from(l.error.is_none())
        );
        let _ = writeln!(out, "# HELP partnerwatch_telegram_presses_total Button presses, by whether the person was allowed to act.\n# TYPE partnerwatch_telegram_presses_total counter");
        let _ = writeln!(
            out,
            "partnerwatch_telegram_presses_total{{allowed=\"true\"}} {}",
            l.presses - l.refused
        );
        let _ = writeln!(
            out,
            "partnerwatch_telegram_presses_total{{allowed=\"false\"}} {}",
            l.refused
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
