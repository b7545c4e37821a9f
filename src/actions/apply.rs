//! [`Desk`]: carries out actions on referrals, at most once each (DESIGN §6 guarantee 8).
//!
//! 1. The action is an [`ActionRecord`] in the store; it is planned against the referral as
//!    stored now (a button pressed days after it was offered acts on today's referral, or says
//!    why it cannot).
//! 2. Its state becomes `sending` and is flushed before the PATCH goes out.
//! 3. The answer — the changed referral, or on 412 the referral read again — is stored in one
//!    commit with the `referral.acted` event (and on 412 the events of what someone else
//!    changed), whose id is the action's: a crash between the commit and marking the action
//!    done cannot announce it twice.
//! 4. An action found `sending` (a crash, a timeout) is settled by reading the referral: done
//!    if it shows the change, sent again only if its `eTag` shows nothing happened, a
//!    conflict otherwise. A second press of a done action sends nothing.

use std::collections::HashSet;
use std::sync::Mutex;

use jiff::Timestamp;
use serde_json::{json, Value};

use super::api::{ApiError, ReferralApi};
use super::{plan, status_of, Refusal, Update, Verb};
use crate::detect::sweep::{content_hash, RecordChange};
use crate::model::{ActionRecord, ActionState, Delivery, Event, EventKind};
use crate::store::{Store, StoreError, SweepCommit};

const DATASET: &str = crate::sources::referrals::DATASET;

/// What was asked: who wants what done to which referral.
#[derive(Debug, Clone)]
pub struct Request {
    pub referral: String,
    pub verb: Verb,
    pub reason: Option<String>,
    pub update: Update,
    /// Who asks ("@alice (123456789)", an operating-system user) and through what
    /// (`cli`, `telegram`).
    pub by: String,
    pub via: String,
}

/// How an action ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Partner Center took it; the referral as it is now.
    Done { record: Value },
    /// Someone changed the referral first (412, or found when settling): what it is now.
    Conflict {
        record: Value,
        changes: Vec<crate::model::Change>,
    },
    /// Refused before anything was sent.
    Refused(Refusal),
    /// Partner Center refused or failed; nothing changed.
    Failed { error: String, status: Option<u16> },
    /// No answer came: whether it took effect is learnt by reading the referral (the next
    /// attempt does so before anything is sent again).
    Unknown { error: String },
    /// This action was already carried out (a second press): what happened then.
    Already { outcome: String },
    /// This action is being carried out right now (a double press).
    InProgress,
}

impl Outcome {
    /// `data.result` of its `referral.acted` event.
    pub fn result(&self) -> &'static str {
        match self {
            Outcome::Done { .. } => "ok",
            Outcome::Conflict { .. } => "conflict",
            Outcome::Refused(_) => "refused",
            Outcome::Failed { .. } | Outcome::Unknown { .. } => "failed",
            Outcome::Already { .. } | Outcome::InProgress => "repeated",
        }
    }

    /// One line for the person who asked.
    pub fn say(&self, verb: Verb) -> String {
        match self {
            Outcome::Done { record } => format!("{} — it is {} now", verb.done(), status_of(record)),
            Outcome::Conflict { record, changes } => {
                // What a person needs to see, not the bookkeeping every change carries.
                let what: Vec<String> = changes
                    .iter()
                    .filter(|c| !matches!(c.path.as_str(), "/eTag" | "/updatedDateTime"))
                    .take(6)
                    .map(|c| format!("{}: {} → {}", c.path, short(&c.old), short(&c.new)))
                    .collect();
                format!(
                    "not {}: the referral was changed in Partner Center first (not through partnerwatch) and is {} now{}",
                    verb.done().to_lowercase(),
                    status_of(record),
                    if what.is_empty() { String::new() } else { format!("; changed: {}", what.join(", ")) }
                )
            }
            Outcome::Refused(r) => format!("not {}: {r}", verb.done().to_lowercase()),
            Outcome::Failed { error, .. } => format!("not {}: {error}", verb.done().to_lowercase()),
            Outcome::Unknown { error } => format!(
                "{error}; whether it was {} is not known yet: partnerwatch reads the referral before trying again",
                verb.done().to_lowercase()
            ),
            Outcome::Already { outcome } => format!("already answered: {outcome}"),
            Outcome::InProgress => "already being sent: wait for its answer".to_string(),
        }
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    };
    let cut: String = s.chars().take(40).collect();
    if cut.len() < s.len() {
        format!("{cut}…")
    } else {
        cut
    }
}

/// How an attempt ended, before it is stored: the referral as read (if it was), other events
/// it found (a conflict's), and the outcome.
struct Ending {
    record: Option<Value>,
    events: Vec<Event>,
    outcome: Outcome,
}

impl Ending {
    fn done(record: Value) -> Ending {
        Ending {
            record: Some(record.clone()),
            events: Vec::new(),
            outcome: Outcome::Done { record },
        }
    }

    fn refused(refusal: Refusal) -> Ending {
        Ending {
            record: None,
            events: Vec::new(),
            outcome: Outcome::Refused(refusal),
        }
    }

    fn failed(error: String, status: Option<u16>) -> Ending {
        Ending {
            record: None,
            events: Vec::new(),
            outcome: Outcome::Failed { error, status },
        }
    }

    fn unknown(e: ApiError) -> Ending {
        Ending {
            record: None,
            events: Vec::new(),
            outcome: Outcome::Unknown {
                error: e.to_string(),
            },
        }
    }
}

/// What turns events into deliveries (the rules), given by the pipeline.
pub type Announce<'a> = &'a (dyn Fn(&[Event]) -> Vec<Delivery> + Sync);

/// Carries out actions; one per process, so that a double press is seen.
#[derive(Debug)]
pub struct Desk {
    store: Store,
    api: ReferralApi,
    busy: Mutex<HashSet<String>>,
}

/// A new opaque id for an action (what a button carries).
pub fn new_action_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Desk {
    pub fn new(store: Store, api: ReferralApi) -> Desk {
        Desk {
            store,
            api,
            busy: Mutex::new(HashSet::new()),
        }
    }

    pub fn api(&self) -> &ReferralApi {
        &self.api
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Gives a pending action its reason (chosen or typed after the press).
    pub fn set_reason(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        if let Some(mut action) = self.store.action(id)? {
            if action.state == ActionState::Pending {
                action.reason = Some(reason.trim().to_string());
                self.store.put_action(&action)?;
            }
        }
        Ok(())
    }

    /// Records that `by`, who may not act, pressed the button of `action`: an event, and
    /// nothing sent. The action stays as it was for those who may.
    pub fn record_refusal(
        &self,
        action: &ActionRecord,
        by: &str,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let stored = self.stored(&action.referral)?.unwrap_or(Value::Null);
        // One event per refused press (the action stays open for those who may).
        let id = crate::model::event::event_id(&[
            b"referral.acted",
            action.id.as_bytes(),
            by.as_bytes(),
            now.to_string().as_bytes(),
        ]);
        let by_them = ActionRecord {
            by: by.to_string(),
            reason: None,
            ..action.clone()
        };
        let outcome = Outcome::Refused(Refusal::NotAllowed);
        let events = [acted_event(
            id,
            &by_them,
            stored,
            None,
            Vec::new(),
            &outcome,
            now,
        )];
        let deliveries = announce(&events);
        let commit = SweepCommit {
            dataset: DATASET.to_string(),
            ..SweepCommit::default()
        };
        self.store.commit_sweep(&commit, &events, &deliveries)?;
        tracing::warn!(referral = %action.referral, by = %by, "a press by someone not allowed to act: nothing sent");
        Ok(())
    }

    /// The stored referral `id`, if partnerwatch has seen it.
    pub fn stored(&self, id: &str) -> Result<Option<Value>, StoreError> {
        self.store
            .records(DATASET)?
            .get(id)?
            .map(|r| r.json())
            .transpose()
    }

    /// Writes a pending action for `request` (a button to press later, or one about to be
    /// carried out) and returns it.
    pub fn offer(&self, request: &Request, now: Timestamp) -> Result<ActionRecord, StoreError> {
        let action = ActionRecord {
            reason: request.reason.clone(),
            update: request.update.to_json(),
            by: request.by.clone(),
            ..ActionRecord::pending(
                new_action_id(),
                &request.referral,
                request.verb.as_str(),
                &request.via,
                now,
            )
        };
        self.store.put_action(&action)?;
        Ok(action)
    }

    /// Buttons for the actions possible on `record` now (pending actions, written once with
    /// one flush), and its Partner Center link: what a chat message about it carries.
    pub fn buttons(
        &self,
        record: &Value,
        link: &str,
        now: Timestamp,
    ) -> Result<Vec<Vec<crate::model::Button>>, StoreError> {
        let id = record["id"].as_str().unwrap_or_default();
        let offered: Vec<ActionRecord> = super::possible(record)
            .into_iter()
            .map(|verb| ActionRecord::pending(new_action_id(), id, verb.as_str(), "telegram", now))
            .collect();
        self.store.put_actions(&offered)?;
        let mut rows = Vec::new();
        if !offered.is_empty() {
            rows.push(
                offered
                    .iter()
                    .map(|a| crate::model::Button {
                        text: button_text(Verb::parse(&a.verb).unwrap_or(Verb::Update)).into(),
                        callback: Some(format!("a:{}", a.id)),
                        url: None,
                    })
                    .collect(),
            );
        }
        rows.push(vec![crate::model::Button {
            text: crate::notify::OPEN_IN_PARTNER_CENTER.into(),
            callback: None,
            url: Some(link.to_string()),
        }]);
        Ok(rows)
    }

    /// Asks for `request` and carries it out.
    pub async fn act(
        &self,
        request: &Request,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        // An earlier action on this referral whose PATCH may have gone out (a timeout, a
        // crash) is settled first, by reading the referral: never a second PATCH blindly.
        let open = self.store.actions_in(ActionState::Sending)?;
        if let Some(earlier) = open.iter().find(|a| a.referral == request.referral) {
            let outcome = self.execute(&earlier.id, None, announce, now).await?;
            if !matches!(outcome, Outcome::Refused(_)) || earlier.verb != request.verb.as_str() {
                return Ok(outcome);
            }
        }
        let action = self.offer(request, now)?;
        self.execute(&action.id, None, announce, now).await
    }

    /// Carries out the action `id` (pressed by `by`, if a button), at most once.
    pub async fn execute(
        &self,
        id: &str,
        by: Option<&str>,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        if !self.busy.lock().expect("busy lock").insert(id.to_string()) {
            return Ok(Outcome::InProgress);
        }
        let result = self.execute_once(id, by, announce, now).await;
        self.busy.lock().expect("busy lock").remove(id);
        result
    }

    async fn execute_once(
        &self,
        id: &str,
        by: Option<&str>,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let Some(mut action) = self.store.action(id)? else {
            return Ok(Outcome::Refused(Refusal::Unknown(id.to_string())));
        };
        if action.state == ActionState::Done {
            return Ok(Outcome::Already {
                outcome: action.outcome.clone().unwrap_or_default(),
            });
        }
        if let Some(by) = by {
            action.by = by.to_string();
        }
        let verb = Verb::parse(&action.verb).unwrap_or(Verb::Update);
        let stored = self.stored(&action.referral)?;
        let ending = match &stored {
            None => Ending::refused(Refusal::Unknown(action.referral.clone())),
            Some(stored) => self.attempt(&mut action, verb, stored, now).await?,
        };
        // No answer: the action stays `sending`, and nothing is stored yet.
        if let Outcome::Unknown { .. } = &ending.outcome {
            return Ok(ending.outcome);
        }
        self.finish(action, verb, stored.as_ref(), ending, announce, now)
    }

    /// Settles or sends `action` on the referral as `stored`.
    async fn attempt(
        &self,
        action: &mut ActionRecord,
        verb: Verb,
        stored: &Value,
        now: Timestamp,
    ) -> Result<Ending, StoreError> {
        let update = Update::from_json(&action.update);
        // Sent before and not settled (a crash, a timeout): read the referral first.
        if action.state == ActionState::Sending {
            let current = match self.api.get(&action.referral, now).await {
                Err(e) => return Ok(Ending::unknown(e)),
                Ok(current) => current,
            };
            if reached(&current, verb, &update) {
                return Ok(Ending::done(current));
            }
            if current["eTag"].as_str() != action.etag.as_deref() {
                return self.conflict(&action.referral, stored, current, now);
            }
            // Nothing happened: the PATCH never arrived, and may be sent now.
        }
        let ops = match plan(stored, verb, action.reason.as_deref(), &update) {
            Ok(ops) => ops,
            Err(refusal) => return Ok(Ending::refused(refusal)),
        };
        if action.state != ActionState::Sending {
            action.etag = stored["eTag"].as_str().map(str::to_string);
        }
        action.state = ActionState::Sending;
        self.store.put_action(action)?;
        let sent = self
            .api
            .patch(&action.referral, &ops, action.etag.as_deref(), now)
            .await;
        Ok(match sent {
            Ok(record) => Ending::done(record),
            Err(ApiError::Conflict) => match self.api.get(&action.referral, now).await {
                Ok(current) => return self.conflict(&action.referral, stored, current, now),
                Err(e) => Ending::failed(
                    format!("the referral changed in Partner Center first, and reading it again failed: {e}"),
                    Some(412),
                ),
            },
            // The action stays `sending`: the next attempt reads the referral first.
            Err(e @ ApiError::NoAnswer(_)) => Ending::unknown(e),
            Err(e) => Ending::failed(e.to_string(), e.status()),
        })
    }

    /// The referral as read after a conflict, with the events of what changed in it (as the
    /// next sweep would have announced them).
    fn conflict(
        &self,
        id: &str,
        stored: &Value,
        current: Value,
        now: Timestamp,
    ) -> Result<Ending, StoreError> {
        let old_raw = serde_json::to_vec(stored).expect("records serialize");
        let raw = serde_json::to_vec(&current).expect("records serialize");
        let mut change = RecordChange::between(
            id,
            Some((content_hash(&old_raw), stored.clone())),
            Some((content_hash(&raw), current.clone())),
        );
        change.version = self.store.versions(DATASET)?.get(id)?;
        let events = if change.changes.is_empty() {
            Vec::new()
        } else {
            crate::detect::referrals::detect(vec![change], false, now)
        };
        Ok(Ending {
            outcome: Outcome::Conflict {
                changes: changes_between(stored, &current),
                record: current.clone(),
            },
            record: Some(current),
            events,
        })
    }

    /// Stores the outcome: the referral as it is now (if read), the `referral.acted` event
    /// and any other events, their deliveries, and the action as done.
    fn finish(
        &self,
        mut action: ActionRecord,
        verb: Verb,
        stored: Option<&Value>,
        ending: Ending,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<Outcome, StoreError> {
        let Ending {
            record,
            mut events,
            outcome,
        } = ending;
        let shown = record
            .clone()
            .or_else(|| stored.cloned())
            .unwrap_or(Value::Null);
        let changes = match (stored, &record) {
            (Some(old), Some(new)) => changes_between(old, new),
            _ => Vec::new(),
        };
        // The action's own id makes the event's: a crash between this commit and marking
        // the action done cannot announce it twice.
        let id = crate::model::event::event_id(&[b"referral.acted", action.id.as_bytes()]);
        events.push(acted_event(
            id,
            &action,
            shown,
            stored.cloned(),
            changes,
            &outcome,
            now,
        ));
        let deliveries = announce(&events);
        let mut commit = SweepCommit {
            dataset: DATASET.to_string(),
            ..SweepCommit::default()
        };
        if let Some(new) = &record {
            let raw = serde_json::to_vec(new).expect("records serialize");
            let hash = content_hash(&raw);
            let id = action.referral.clone();
            commit.index = self
                .store
                .index(DATASET)?
                .rewrite(&[(id.clone(), hash, raw.len())], &[]);
            if let Some(old) = stored {
                commit.history = vec![(
                    id.clone(),
                    serde_json::to_vec(old).expect("records serialize"),
                )];
            }
            commit.versions = vec![(id.clone(), self.store.versions(DATASET)?.get(&id)? + 1)];
            commit.upserts = vec![(id, hash, raw)];
        }
        self.store.commit_sweep(&commit, &events, &deliveries)?;
        action.state = ActionState::Done;
        action.outcome = Some(outcome.say(verb));
        self.store.put_action(&action)?;
        tracing::info!(referral = %action.referral, action = %verb.as_str(), by = %action.by, via = %action.via, result = outcome.result(), "action on a referral");
        Ok(outcome)
    }

    /// Settles every action a crash or a timeout left `sending` (at start).
    pub async fn settle(
        &self,
        announce: Announce<'_>,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let open = self.store.actions_in(ActionState::Sending)?;
        let n = open.len();
        for action in open {
            let outcome = self.execute(&action.id, None, announce, now).await?;
            tracing::info!(referral = %action.referral, action = %action.verb, result = outcome.result(), "settled an interrupted action");
        }
        Ok(n)
    }
}

/// What a button that does `verb` says.
pub fn button_text(verb: Verb) -> &'static str {
    match verb {
        Verb::Accept => "✅ Accept",
        Verb::Decline => "✖ Decline…",
        Verb::Win => "🏆 Won",
        Verb::Lose => "Lost…",
        Verb::Update => "Update",
    }
}

/// `referral.acted` for `action` ending in `outcome`: who, through what, the result, and
/// what the person was told.
fn acted_event(
    id: String,
    action: &ActionRecord,
    record: Value,
    previous: Option<Value>,
    changes: Vec<crate::model::Change>,
    outcome: &Outcome,
    now: Timestamp,
) -> Event {
    let verb = Verb::parse(&action.verb).unwrap_or(Verb::Update);
    let (error, status) = match outcome {
        Outcome::Failed { error, status } => (Some(error.clone()), *status),
        Outcome::Refused(r) => (Some(r.to_string()), None),
        Outcome::Conflict { .. } => (None, Some(412)),
        _ => (None, None),
    };
    Event {
        id,
        kind: EventKind::ReferralActed,
        source: DATASET.to_string(),
        entity_id: action.referral.clone(),
        detected_at: now,
        record: record.into(),
        previous: previous.map(Into::into),
        changes,
        data: json!({
            "action": verb.as_str(),
            "done": verb.done(),
            "by": action.by,
            "via": action.via,
            "result": outcome.result(),
            "reason": action.reason,
            "http_status": status,
            "error": error,
            "said": outcome.say(verb),
        }),
    }
}

/// Whether `current` shows what `verb` was to do.
fn reached(current: &Value, verb: Verb, update: &Update) -> bool {
    match verb.transition() {
        Some(((status, substatus), _)) => {
            current["status"]
                .as_str()
                .is_some_and(|s| s.eq_ignore_ascii_case(status))
                && current["substatus"]
                    .as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(substatus))
        }
        None => {
            update
                .deal_value
                .is_none_or(|v| current["details"]["dealValue"].as_f64() == Some(v))
                && update
                    .notes
                    .as_ref()
                    .is_none_or(|n| current["details"]["notes"].as_str() == Some(n))
        }
    }
}

fn changes_between(old: &Value, new: &Value) -> Vec<crate::model::Change> {
    crate::detect::diff::changes(old, new)
}
