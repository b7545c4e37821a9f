//! The Telegram side of actions (`actions.telegram`): long polling of the channel's bot for
//! button presses and commands, inside `partnerwatch run` as a task of its own — a Telegram
//! outage or a 409 from another poller is reported on `/healthz` and waited out, and never
//! stops a sweep or a delivery.
//!
//! A press carries `a:ID`, the opaque id of a pending [`crate::model::ActionRecord`]; nothing
//! in it is trusted but that id. A person not in `allow` is told "you are not allowed to act on
//! referrals", nothing is sent, and the attempt is an event. Decline and lose ask for a reason
//! (a few common ones, or a reply in words); with `confirm` a press asks "Accept Contoso —
//! 50,000 USD?" first. Afterwards the buttons say what happened ("Accepted by @alice, 14:02").
//! Commands, in the channel's chat or a private chat with an allowed person: `/expiring`,
//! `/referral ID-or-name`, `/help`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::Value;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageReplyMarkupSetters, GetUpdatesSetters,
    SendMessageSetters,
};
use teloxide::requests::Requester;
use teloxide::types::{
    CallbackQuery, ForceReply, MaybeInaccessibleMessage, Message, ParseMode, ReplyMarkup,
    ReplyParameters, UpdateKind, User,
};
use teloxide::Bot;

use super::apply::{Desk, Outcome};
use super::{called, capitalised, status_of, Verb};
use crate::health::Metrics;
use crate::model::{ActionRecord, Button, Delivery, Event};
use crate::notify::text::html_escape;

/// What the listener needs from the running service.
pub trait Host: Send + Sync + 'static {
    fn desk(&self) -> Option<&Desk>;
    /// The deliveries the rules make of `events` (the outcome's announcement).
    fn announce(&self, events: &[Event]) -> Vec<Delivery>;
    fn now(&self) -> Timestamp;
    /// Sends what is due in the outbox.
    fn deliver(&self) -> impl Future<Output = ()> + Send;
    /// What follows an action that Partner Center took (the deal-registration check).
    fn acted(&self, record: &Value) -> impl Future<Output = ()> + Send;
    /// The stored referrals still to be answered, with their deadlines, most urgent first.
    fn expiring(&self) -> Vec<(Value, Timestamp)>;
    /// Stored referrals whose id is `text` or whose customer's name contains it.
    fn find(&self, text: &str) -> Vec<Value>;
    /// The Partner Center link of a referral.
    fn link(&self, id: &str) -> String;
}

/// Reasons offered for decline and lose (Partner Center's `statusReason` is free text).
pub const REASONS: &[&str] = &[
    "Customer chose a competitor",
    "Budget cut",
    "No response from customer",
    "Not our region or expertise",
];

/// The listener's settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub allow: Vec<i64>,
    pub confirm: bool,
    /// The chat the channel posts to, where commands are answered too.
    pub chat: Option<i64>,
    /// How long one `getUpdates` waits for something to happen (long polling).
    pub poll_timeout: Duration,
}

/// Who pressed: "@alice (123456789)".
fn who(user: &User) -> String {
    match &user.username {
        Some(name) => format!("@{name} ({})", user.id.0),
        None => format!("{} ({})", user.first_name, user.id.0),
    }
}

fn user_id(user: &User) -> i64 {
    i64::try_from(user.id.0).unwrap_or(-1)
}

/// Listens until the process stops.
pub async fn listen<H: Host>(host: Arc<H>, bot: Bot, settings: Settings, metrics: Arc<Metrics>) {
    let mut offset: i32 = 0;
    let mut asked: HashMap<(i64, i32), String> = HashMap::new();
    let mut backoff = Duration::from_secs(1);
    loop {
        let updates = bot
            .get_updates()
            .offset(offset)
            .timeout(settings.poll_timeout.as_secs() as u32)
            .await;
        let updates = match updates {
            Ok(u) => {
                metrics.listener(None, host.now());
                backoff = Duration::from_secs(1);
                u
            }
            Err(e) => {
                // 409: another process polls this bot; an outage: Telegram is away. Either
                // way the service goes on, and the listener tries again later.
                let error = crate::config::secret::redact(&e.to_string()).into_owned();
                tracing::warn!(%error, "the Telegram listener cannot get updates; trying again later");
                metrics.listener(Some(error), host.now());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        for update in updates {
            offset = offset.max(update.id.0 as i32 + 1);
            match update.kind {
                UpdateKind::CallbackQuery(q) => {
                    on_press(&*host, &bot, &settings, &metrics, &mut asked, q).await;
                }
                UpdateKind::Message(m) => {
                    on_message(&*host, &bot, &settings, &mut asked, m).await;
                }
                _ => {}
            }
        }
    }
}

fn cb(text: impl Into<String>, data: String) -> Button {
    Button {
        text: text.into(),
        callback: Some(data),
        url: None,
    }
}

async fn set_buttons(
    bot: &Bot,
    message: Option<&MaybeInaccessibleMessage>,
    rows: Vec<Vec<Button>>,
) {
    let Some(m) = message else { return };
    let (chat, id) = (m.chat().id, m.id());
    if let Err(e) = bot
        .edit_message_reply_markup(chat, id)
        .reply_markup(crate::notify::telegram::keyboard(&rows))
        .await
    {
        tracing::debug!(error = %e, "cannot change the message's buttons");
    }
}

async fn on_press<H: Host>(
    host: &H,
    bot: &Bot,
    settings: &Settings,
    metrics: &Metrics,
    asked: &mut HashMap<(i64, i32), String>,
    q: CallbackQuery,
) {
    let data = q.data.clone().unwrap_or_default();
    let answer = |text: String| {
        let bot = bot.clone();
        let id = q.id.clone();
        async move {
            let _ = bot.answer_callback_query(id).text(text).await;
        }
    };
    let Some(desk) = host.desk() else {
        answer("acting on referrals is not configured".into()).await;
        return;
    };
    let (kind, rest) = data.split_once(':').unwrap_or((data.as_str(), ""));
    let (id, extra) = rest.split_once(':').unwrap_or((rest, ""));
    let allowed = settings.allow.contains(&user_id(&q.from));
    metrics.press(allowed);
    let Ok(Some(action)) = desk.store().action(id) else {
        answer("this button is no longer known: ask for the referral again (/referral)".into())
            .await;
        return;
    };
    if !allowed {
        answer("you are not allowed to act on referrals".into()).await;
        let announce = |events: &[Event]| host.announce(events);
        if let Err(e) = desk.record_refusal(&action, &who(&q.from), &announce, host.now()) {
            tracing::warn!(error = %e, "cannot record a refused press");
        }
        return;
    }
    let verb = Verb::parse(&action.verb).unwrap_or(Verb::Update);
    let stored = desk
        .stored(&action.referral)
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    let name = called(&stored);
    match kind {
        // The first press: a reason first, then a question, then the action.
        "a" if verb.needs_reason() && action.reason.is_none() => {
            let mut rows: Vec<Vec<Button>> = REASONS
                .iter()
                .enumerate()
                .map(|(i, r)| vec![cb(*r, format!("r:{id}:{i}"))])
                .collect();
            rows.push(vec![
                cb("Other: I will type it", format!("o:{id}")),
                cb("Cancel", format!("n:{id}")),
            ]);
            set_buttons(bot, q.message.as_ref(), rows).await;
            answer(format!("Why {} {name}?", verb.as_str())).await;
        }
        "r" => {
            let Some(reason) = extra.parse::<usize>().ok().and_then(|i| REASONS.get(i)) else {
                answer("unknown reason".into()).await;
                return;
            };
            let _ = desk.set_reason(id, reason);
            ask_or_act(host, bot, settings, &q, desk, &action, &name).await;
        }
        "o" => {
            answer("reply to my message with the reason".into()).await;
            if let Some(m) = &q.message {
                let chat = m.chat().id;
                let sent = bot
                    .send_message(
                        chat,
                        format!(
                            "Why {} {}? Reply to this message with the reason.",
                            verb.as_str(),
                            html_escape(&name)
                        ),
                    )
                    .parse_mode(ParseMode::Html)
                    .reply_markup(ReplyMarkup::ForceReply(ForceReply::new().selective()))
                    .await;
                if let Ok(sent) = sent {
                    asked.insert((chat.0, sent.id.0), id.to_string());
                }
            }
        }
        "a" => ask_or_act(host, bot, settings, &q, desk, &action, &name).await,
        "y" => act(host, bot, &q, desk, &action).await,
        "n" => {
            set_buttons(bot, q.message.as_ref(), fresh_buttons(host, desk, &stored)).await;
            answer("nothing was sent".into()).await;
        }
        _ => answer("unknown button".into()).await,
    }
}

/// The buttons for what can be done to `record` now (new pending actions).
fn fresh_buttons<H: Host>(host: &H, desk: &Desk, record: &Value) -> Vec<Vec<Button>> {
    let id = record["id"].as_str().unwrap_or_default();
    desk.buttons(record, &host.link(id), host.now())
        .unwrap_or_default()
}

async fn ask_or_act<H: Host>(
    host: &H,
    bot: &Bot,
    settings: &Settings,
    q: &CallbackQuery,
    desk: &Desk,
    action: &ActionRecord,
    name: &str,
) {
    let (id, verb) = (&action.id, verb_of(action));
    if settings.confirm {
        let question = format!("{} {name}?", capitalised(verb.as_str()));
        set_buttons(
            bot,
            q.message.as_ref(),
            vec![vec![
                cb(format!("Yes: {}", verb.as_str()), format!("y:{id}")),
                cb("No", format!("n:{id}")),
            ]],
        )
        .await;
        let _ = bot.answer_callback_query(q.id.clone()).text(question).await;
        return;
    }
    act(host, bot, q, desk, action).await;
}

fn verb_of(action: &ActionRecord) -> Verb {
    Verb::parse(&action.verb).unwrap_or(Verb::Update)
}

async fn act<H: Host>(host: &H, bot: &Bot, q: &CallbackQuery, desk: &Desk, action: &ActionRecord) {
    let (id, verb) = (action.id.as_str(), verb_of(action));
    // A second press of a button already answered sends nothing and says what happened.
    if action.state == crate::model::ActionState::Done {
        let said = Outcome::Already {
            outcome: action.outcome.clone().unwrap_or_default(),
        }
        .say(verb);
        let _ = bot.answer_callback_query(q.id.clone()).text(said).await;
        return;
    }
    let _ = bot
        .answer_callback_query(q.id.clone())
        .text("sending to Partner Center…")
        .await;
    let announce = |events: &[Event]| host.announce(events);
    let by = who(&q.from);
    let outcome = desk.execute(id, Some(&by), &announce, host.now()).await;
    if let Ok(Outcome::Done { record }) = &outcome {
        host.acted(record).await;
    }
    let (label, record) = match &outcome {
        Ok(Outcome::Done { record }) => (
            format!(
                "{} by {by}, {}",
                verb.done(),
                host.now().strftime("%H:%M UTC")
            ),
            Some(record.clone()),
        ),
        Ok(Outcome::Conflict { record, .. }) => (
            format!("Changed in Partner Center first: {}", status_of(record)),
            Some(record.clone()),
        ),
        Ok(Outcome::InProgress) => return,
        Ok(other) => (other.say(verb), None),
        Err(e) => (format!("not sent: {e}"), None),
    };
    let mut rows = vec![vec![cb(label, "x:done".into())]];
    // Still something to do (a stale button, a conflict): the buttons of today's referral.
    if let Some(r) = record.or_else(|| desk.stored(&action.referral).ok().flatten()) {
        let more = fresh_buttons(host, desk, &r);
        rows.extend(more);
    }
    set_buttons(bot, q.message.as_ref(), rows).await;
    host.deliver().await;
}

async fn on_message<H: Host>(
    host: &H,
    bot: &Bot,
    settings: &Settings,
    asked: &mut HashMap<(i64, i32), String>,
    m: Message,
) {
    let Some(from) = m.from.as_ref() else { return };
    let chat = m.chat.id;
    let allowed_person = settings.allow.contains(&user_id(from));
    let allowed_chat = settings.chat == Some(chat.0) || (m.chat.is_private() && allowed_person);
    let text = m.text().unwrap_or_default().trim().to_string();
    if !allowed_chat {
        return;
    }
    // A reason typed in answer to "Why decline …?".
    if let Some(to) = m.reply_to_message() {
        if let Some(action) = asked.remove(&(chat.0, to.id.0)) {
            if !allowed_person {
                let _ = bot
                    .send_message(chat, "you are not allowed to act on referrals")
                    .await;
                return;
            }
            let Some(desk) = host.desk() else { return };
            let _ = desk.set_reason(&action, &text);
            let announce = |events: &[Event]| host.announce(events);
            let verb = desk
                .store()
                .action(&action)
                .ok()
                .flatten()
                .and_then(|a| Verb::parse(&a.verb))
                .unwrap_or(Verb::Update);
            let outcome = desk
                .execute(&action, Some(&who(from)), &announce, host.now())
                .await;
            let said = match outcome {
                Ok(o) => o.say(verb),
                Err(e) => format!("not sent: {e}"),
            };
            let _ = bot
                .send_message(chat, html_escape(&said))
                .parse_mode(ParseMode::Html)
                .reply_parameters(ReplyParameters::new(m.id))
                .await;
            host.deliver().await;
            return;
        }
    }
    let (command, arg) = text.split_once(' ').unwrap_or((text.as_str(), ""));
    let command = command.split('@').next().unwrap_or(command);
    let reply = match command {
        "/help" | "/start" => format!(
            "I announce Partner Center referrals and let the people listed in <code>actions.telegram.allow</code> answer them with the buttons under each message.\n\n/expiring — referrals still to be answered, most urgent first\n/referral ID or customer — one referral, with its buttons\n/help — this\n\nYour Telegram user id is <code>{}</code>{}.",
            user_id(from),
            if allowed_person { " (allowed to act)" } else { " (not allowed to act)" }
        ),
        "/expiring" => {
            let now = host.now();
            let list = host.expiring();
            if list.is_empty() {
                "No referral is waiting for an answer.".to_string()
            } else {
                let lines: Vec<String> = list
                    .iter()
                    .take(10)
                    .map(|(r, deadline)| {
                        format!(
                            "⏰ {} — {}\n<code>{}</code>",
                            crate::templates::helpers::left(deadline.duration_since(now)),
                            html_escape(&called(r)),
                            html_escape(r["id"].as_str().unwrap_or_default())
                        )
                    })
                    .collect();
                let more = list.len().saturating_sub(10);
                format!(
                    "{}{}",
                    lines.join("\n"),
                    if more > 0 { format!("\n… and {more} more") } else { String::new() }
                )
            }
        }
        "/referral" => {
            let found = host.find(arg.trim());
            match found.as_slice() {
                [] => format!("No stored referral is {:?}.", arg.trim()),
                [r] => {
                    let id = r["id"].as_str().unwrap_or_default();
                    let text = format!(
                        "<b>{}</b>\n{}\n<code>{}</code>",
                        html_escape(&called(r)),
                        html_escape(&status_of(r)),
                        html_escape(id)
                    );
                    let mut request = bot.send_message(chat, text).parse_mode(ParseMode::Html);
                    if let Some(desk) = host.desk() {
                        let rows = fresh_buttons(host, desk, r);
                        request = request.reply_markup(crate::notify::telegram::keyboard(&rows));
                    }
                    let _ = request.await;
                    return;
                }
                many => {
                    let lines: Vec<String> = many
                        .iter()
                        .take(10)
                        .map(|r| format!("{} — <code>{}</code>", html_escape(&called(r)), html_escape(r["id"].as_str().unwrap_or_default())))
                        .collect();
                    format!("{} referrals match; say which:\n{}", many.len(), lines.join("\n"))
                }
            }
        }
        _ => return,
    };
    let _ = bot
        .send_message(chat, reply)
        .parse_mode(ParseMode::Html)
        .await;
}
