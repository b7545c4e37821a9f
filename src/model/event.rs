//! [`Event`]: one thing that happened, as DESIGN §5 defines it. Events are stored before any
//! delivery of them; their id is derived from the change itself, so detecting the same change
//! twice yields the same id and is stored (and announced) once.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

macro_rules! event_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// Every kind of event of DESIGN §5.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum EventKind { $($variant,)+ }

        impl EventKind {
            pub const ALL: &'static [EventKind] = &[$(EventKind::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(EventKind::$variant => $name,)+ }
            }
        }

        impl std::str::FromStr for EventKind {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($name => Ok(EventKind::$variant),)+
                    other => Err(format!("unknown event kind {other:?}")),
                }
            }
        }
    };
}

event_kinds! {
    ReferralNew => "referral.new",
    ReferralChanged => "referral.changed",
    ReferralRemoved => "referral.removed",
    ReferralStatusChanged => "referral.status_changed",
    ReferralExpiring => "referral.expiring",
    ReferralExpired => "referral.expired",
    ReferralClosed => "referral.closed",
    ReferralRegistrationChanged => "referral.registration_changed",
    ReferralActed => "referral.acted",
    ReferralRegistrationEligibility => "referral.registration_eligibility",
    PartnerReferralNew => "partner_referral.new",
    PartnerReferralChanged => "partner_referral.changed",
    PartnerReferralStatusChanged => "partner_referral.status_changed",
    CopilotNew => "copilot.new",
    CopilotChanged => "copilot.changed",
    CopilotRemoved => "copilot.removed",
    CopilotHealthChanged => "copilot.health_changed",
    CopilotThresholdCrossed => "copilot.threshold_crossed",
    AdoptionSummaryChanged => "adoption_summary.changed",
    CopilotSummaryChanged => "copilot_summary.changed",
    MciSummaryChanged => "mci_summary.changed",
    MciNew => "mci.new",
    MciChanged => "mci.changed",
    MciMilestoneChanged => "mci.milestone_changed",
    MciStageChanged => "mci.stage_changed",
    LicenseNew => "license.new",
    LicenseUsageChanged => "license.usage_changed",
    SystemAuthFailed => "system.auth_failed",
    SystemSourceFailing => "system.source_failing",
    SystemSourceRecovered => "system.source_recovered",
    SystemDeliveryDead => "system.delivery_dead",
}

impl EventKind {
    /// The template used when a rule names none: the kind with `.` turned into `_`.
    pub fn default_template(self) -> String {
        self.as_str().replace('.', "_")
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EventKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// One field that differs between two versions of a record, addressed by a JSON pointer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub path: String,
    #[serde(default)]
    pub old: Value,
    #[serde(default)]
    pub new: Value,
}

/// Something that happened, ready for the rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Derived from the change: the same change detected twice has the same id.
    pub id: String,
    pub kind: EventKind,
    /// The source (dataset) that produced it, e.g. `referrals`.
    pub source: String,
    pub entity_id: String,
    pub detected_at: Timestamp,
    /// The record as the API returned it (for a removal: as it was last seen).
    pub record: super::Doc,
    /// The version before the change, if there was one: kept as its stored text until read.
    pub previous: Option<super::Doc>,
    #[serde(default)]
    pub changes: Vec<Change>,
    /// Kind-specific facts (`from`, `to`, `hours_left`, …).
    #[serde(default)]
    pub data: Value,
}

/// A deterministic id from the parts that define a change.
pub fn event_id(parts: &[&[u8]]) -> String {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    format!("{:032x}", hasher.digest128())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_parses_back_and_names_its_template() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>().unwrap(), *kind);
        }
        assert_eq!(EventKind::ReferralNew.default_template(), "referral_new");
        assert!("referal.new".parse::<EventKind>().is_err());
    }

    #[test]
    fn event_ids_depend_on_every_part_and_its_boundaries() {
        let a = event_id(&[b"referral.new", b"x", b"ab"]);
        assert_eq!(a, event_id(&[b"referral.new", b"x", b"ab"]));
        assert_ne!(a, event_id(&[b"referral.new", b"xa", b"b"]));
        assert_ne!(a, event_id(&[b"referral.changed", b"x", b"ab"]));
    }
}
