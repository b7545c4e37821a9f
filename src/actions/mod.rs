//! Acting on a referral: accept, decline, win, lose, update (DESIGN §1 actions, §6 guarantee
//! 8), from the command line or a Telegram button.
//!
//! A request becomes an [`ActionRecord`] in the store before anything is sent; the transition
//! is checked against the documented table first (api-docs/referrals-resources.txt: New →
//! Active/Accepted or Closed/Declined, Active → Closed/Won or Lost); the JSON Patch carries
//! only `replace`/`add` operations, `If-Match` with the stored `eTag`, and `Prefer:
//! return=representation`; the referral Partner Center answers with is stored in the same
//! commit as the `referral.acted` event, so the next sweep announces nothing twice. A 412 is
//! answered by reading the referral again and saying what changed; 401/403 by the remedy;
//! nothing is retried blindly: an action whose PATCH may have gone out is settled by reading
//! the referral, never by sending again.

pub mod api;
pub mod apply;
pub mod telegram;

use serde_json::{json, Value};

/// What a person can do to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Accept,
    Decline,
    Win,
    Lose,
    Update,
}

impl Verb {
    pub const ALL: [Verb; 5] = [
        Verb::Accept,
        Verb::Decline,
        Verb::Win,
        Verb::Lose,
        Verb::Update,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Accept => "accept",
            Verb::Decline => "decline",
            Verb::Win => "win",
            Verb::Lose => "lose",
            Verb::Update => "update",
        }
    }

    pub fn parse(s: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// What it is called once done: "Accepted", "Declined", "Won", "Lost", "Updated".
    pub fn done(self) -> &'static str {
        match self {
            Verb::Accept => "Accepted",
            Verb::Decline => "Declined",
            Verb::Win => "Won",
            Verb::Lose => "Lost",
            Verb::Update => "Updated",
        }
    }

    /// The (status, substatus) it moves a referral to, and the status it must be in now.
    pub fn transition(self) -> Option<((&'static str, &'static str), &'static str)> {
        match self {
            Verb::Accept => Some((("Active", "Accepted"), "New")),
            Verb::Decline => Some((("Closed", "Declined"), "New")),
            Verb::Win => Some((("Closed", "Won"), "Active")),
            Verb::Lose => Some((("Closed", "Lost"), "Active")),
            Verb::Update => None,
        }
    }

    /// Whether it asks for a reason (Partner Center's `statusReason`).
    pub fn needs_reason(self) -> bool {
        matches!(self, Verb::Decline | Verb::Lose)
    }
}

/// The fields `referral update` may change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Update {
    pub deal_value: Option<f64>,
    /// `details.closingDateTime`, as Partner Center writes times.
    pub close_date: Option<String>,
    pub notes: Option<String>,
    /// A member of the partner's own organisation to add to the team (`team/-`).
    pub add_member: Option<Value>,
}

impl Update {
    pub fn to_json(&self) -> Value {
        json!({
            "dealValue": self.deal_value,
            "closingDateTime": self.close_date,
            "notes": self.notes,
            "member": self.add_member,
        })
    }

    pub fn from_json(v: &Value) -> Update {
        Update {
            deal_value: v["dealValue"].as_f64(),
            close_date: v["closingDateTime"].as_str().map(str::to_string),
            notes: v["notes"].as_str().map(str::to_string),
            add_member: v.get("member").filter(|m| !m.is_null()).cloned(),
        }
    }

    fn is_empty(&self) -> bool {
        *self == Update::default()
    }
}

/// Why an action is refused before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no referral {0} is stored: run `partnerwatch poll` first, or check the id")]
    Unknown(String),
    #[error("it is {now} now, so it cannot be {done} (only a referral that is {from} can): nothing was sent to Partner Center")]
    NotNow {
        now: String,
        done: &'static str,
        from: &'static str,
    },
    #[error("it is an outgoing referral: the partner you sent it to answers it")]
    Outgoing,
    #[error("a reason is needed (Partner Center's statusReason): say why")]
    NoReason,
    #[error("nothing to update: give --deal-value, --close-date, --notes or --add-member")]
    NothingToUpdate,
    #[error("you are not allowed to act on referrals")]
    NotAllowed,
}

fn text<'a>(r: &'a Value, key: &str) -> &'a str {
    crate::model::field(r, key)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// "New/Pending": the referral's status and substatus as shown.
pub fn status_of(r: &Value) -> String {
    match (text(r, "status"), text(r, "substatus")) {
        ("", _) => "in an unknown state".to_string(),
        (s, "") => s.to_string(),
        (s, sub) => format!("{s}/{sub}"),
    }
}

/// What a person calls a referral: "Contoso — 50,000 USD" (the customer on one line, the
/// deal value if it has one).
pub fn called(r: &Value) -> String {
    let name = r["customerProfile"]["name"]
        .as_str()
        .map(crate::notify::text::fold_breaks)
        .unwrap_or_else(|| "(customer not named)".into());
    match r["details"]["dealValue"].as_f64() {
        Some(_) => format!(
            "{name} — {}",
            crate::notify::text::money(
                &r["details"]["dealValue"],
                r["details"]["currency"].as_str().unwrap_or_default()
            )
        ),
        None => name,
    }
}

/// `s` with its first letter in capitals ("accept" → "Accept").
pub fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The JSON Patch that does `verb` to the stored referral `r`, or why it may not be done now.
/// Only `replace` and `add` operations, as the update article allows.
pub fn plan(
    r: &Value,
    verb: Verb,
    reason: Option<&str>,
    update: &Update,
) -> Result<Vec<Value>, Refusal> {
    let mut ops = Vec::new();
    if let Some(((status, substatus), from)) = verb.transition() {
        if !text(r, "status").eq_ignore_ascii_case(from) {
            return Err(Refusal::NotNow {
                now: status_of(r),
                done: verb.done(),
                from,
            });
        }
        if matches!(verb, Verb::Accept | Verb::Decline)
            && text(r, "direction").eq_ignore_ascii_case("Outgoing")
        {
            return Err(Refusal::Outgoing);
        }
        ops.push(json!({ "op": "replace", "path": "/status", "value": status }));
        ops.push(json!({ "op": "replace", "path": "/substatus", "value": substatus }));
        if verb.needs_reason() {
            let reason = reason
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or(Refusal::NoReason)?;
            ops.push(json!({ "op": "replace", "path": "/statusReason", "value": reason }));
        }
        return Ok(ops);
    }
    if update.is_empty() {
        return Err(Refusal::NothingToUpdate);
    }
    if let Some(v) = update.deal_value {
        ops.push(json!({ "op": "replace", "path": "/details/dealValue", "value": v }));
    }
    if let Some(d) = &update.close_date {
        ops.push(json!({ "op": "replace", "path": "/details/closingDateTime", "value": d }));
    }
    if let Some(n) = &update.notes {
        ops.push(json!({ "op": "replace", "path": "/details/notes", "value": n }));
    }
    if let Some(m) = &update.add_member {
        ops.push(json!({ "op": "add", "path": "/team/-", "value": m }));
    }
    Ok(ops)
}

/// The verbs that can be done to `r` now (the buttons a message offers).
pub fn possible(r: &Value) -> Vec<Verb> {
    [Verb::Accept, Verb::Decline, Verb::Win, Verb::Lose]
        .into_iter()
        .filter(|v| plan(r, *v, Some("reason"), &Update::default()).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_documented_transitions_are_planned() {
        let new = json!({"status": "New", "substatus": "Pending", "direction": "Incoming"});
        let active = json!({"status": "Active", "substatus": "Accepted"});
        let closed = json!({"status": "Closed", "substatus": "Won"});
        let none = Update::default();
        let ops = plan(&new, Verb::Accept, None, &none).unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "replace", "path": "/status", "value": "Active"})
        );
        assert_eq!(
            ops[1],
            json!({"op": "replace", "path": "/substatus", "value": "Accepted"})
        );
        assert!(matches!(
            plan(&active, Verb::Accept, None, &none),
            Err(Refusal::NotNow { .. })
        ));
        assert!(matches!(
            plan(&new, Verb::Win, None, &none),
            Err(Refusal::NotNow { .. })
        ));
        assert!(matches!(
            plan(&closed, Verb::Lose, Some("x"), &none),
            Err(Refusal::NotNow { .. })
        ));
        assert_eq!(
            plan(&new, Verb::Decline, None, &none),
            Err(Refusal::NoReason)
        );
        let lose = plan(&active, Verb::Lose, Some("Budget cut"), &none).unwrap();
        assert_eq!(lose[2]["value"], "Budget cut");
        let outgoing = json!({"status": "New", "direction": "Outgoing"});
        assert_eq!(
            plan(&outgoing, Verb::Accept, None, &none),
            Err(Refusal::Outgoing)
        );
        assert_eq!(possible(&new), vec![Verb::Accept, Verb::Decline]);
        assert_eq!(possible(&active), vec![Verb::Win, Verb::Lose]);
        assert!(possible(&closed).is_empty());
        let update = Update {
            deal_value: Some(50_000.0),
            ..Update::default()
        };
        let ops = plan(&active, Verb::Update, None, &update).unwrap();
        assert!(ops.iter().all(|o| o["op"] == "replace" || o["op"] == "add"));
        assert_eq!(
            plan(&active, Verb::Update, None, &none),
            Err(Refusal::NothingToUpdate)
        );
    }
}
