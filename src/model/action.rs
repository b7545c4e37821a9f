//! [`ActionRecord`]: one person's request to move a referral (accept, decline, win, lose,
//! update), kept in the store from before its PATCH is sent until its outcome is known, so
//! that a double press, a retry after a timeout or a restart in the middle sends at most one.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionState {
    /// Offered (a button) or asked for, nothing sent yet.
    Pending,
    /// The PATCH may have been sent: its outcome is learnt by reading the referral again,
    /// never by sending it again blindly.
    Sending,
    /// Finished; `outcome` says how.
    Done,
}

/// One action on one referral.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// Opaque and random: what a Telegram button carries, never the referral id in clear.
    pub id: String,
    pub referral: String,
    /// accept, decline, win, lose or update.
    pub verb: String,
    /// What the person gave as the reason (decline, lose).
    #[serde(default)]
    pub reason: Option<String>,
    /// The fields of an update (`dealValue`, `closingDateTime`, `notes`, `member`).
    #[serde(default)]
    pub update: serde_json::Value,
    /// The referral's `eTag` when the action was decided, sent as `If-Match`.
    #[serde(default)]
    pub etag: Option<String>,
    /// Who asked (a Telegram user, an operating-system user) and through what.
    pub by: String,
    pub via: String,
    pub state: ActionState,
    pub created_at: Timestamp,
    #[serde(default)]
    pub outcome: Option<String>,
}

impl ActionRecord {
    /// A new pending action: `verb` on `referral`, asked for through `via`, with a fresh
    /// opaque id.
    pub fn pending(id: String, referral: &str, verb: &str, via: &str, now: Timestamp) -> Self {
        ActionRecord {
            id,
            referral: referral.to_string(),
            verb: verb.to_string(),
            reason: None,
            update: serde_json::Value::Null,
            etag: None,
            by: String::new(),
            via: via.to_string(),
            state: ActionState::Pending,
            created_at: now,
            outcome: None,
        }
    }
}
