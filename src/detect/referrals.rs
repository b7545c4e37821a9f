//! Events of the Referrals API dataset from one sweep's record changes: `referral.new`,
//! `.changed`, `.removed`, and the lifecycle moves inside a change — `.status_changed`,
//! `.closed` (with the outcome), `.expired` (the API's own Expired substatus) and
//! `.registration_changed`. The time-based events live in [`super::expiry`].

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use super::expiry;
use super::record_event;
use super::RecordChange;
use crate::model::event_data::{Closed, EventData, StatusChanged};
use crate::model::referral::{ReferralStatus, ReferralSubstatus};
use crate::model::{Change, Dataset, Doc, Event, EventKind};

pub const SOURCE: &str = Dataset::Referrals.name();

fn text<'a>(r: &'a Value, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| crate::model::field(r, k).and_then(Value::as_str))
}

fn status(r: &Value) -> (String, String) {
    (
        text(r, &["status"]).unwrap_or("").to_string(),
        text(r, &["substatus", "subStatus"])
            .unwrap_or("")
            .to_string(),
    )
}

fn registration(r: &Value) -> String {
    text(r, &["registrationStatus"])
        .unwrap_or("None")
        .to_string()
}

/// Turns the record changes of one complete sweep into events, moving the records into
/// them. On a baseline sweep nothing is announced: the records are only remembered.
pub fn detect(changes: Vec<RecordChange>, baseline: bool, now: Timestamp) -> Vec<Event> {
    if baseline {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in changes {
        // The occurrence of this change is part of its events' ids (guarantee 10).
        let seq = u128::from(c.version);
        let entity_id = c.entity_id;
        let event = |kind: EventKind,
                     hashes: &[u128],
                     record: Doc,
                     previous: Option<Doc>,
                     changes: Vec<Change>,
                     data: Value| {
            record_event(
                kind, SOURCE, &entity_id, hashes, record, previous, changes, data, now,
            )
        };
        let empty = || Value::Object(Map::new());
        match (c.old, c.new) {
            (None, Some((h, new))) => out.push(event(
                EventKind::ReferralNew,
                &[h, seq],
                new,
                None,
                Vec::new(),
                empty(),
            )),
            (Some((h, old)), None) => out.push(event(
                EventKind::ReferralRemoved,
                &[h, seq],
                old,
                None,
                Vec::new(),
                json!({ "reason": "absent from a complete sweep" }),
            )),
            (Some((oh, old)), Some((nh, new))) => {
                let hashes = [oh, nh, seq];
                // Of the two versions only these fields are read: the rest stays text.
                let named = |doc: &Doc| {
                    doc.members_named(&["status", "substatus", "subStatus", "registrationStatus"])
                        .unwrap_or_default()
                };
                let (was, is) = (named(&old), named(&new));
                let (from, to) = (status(&was), status(&is));
                let (rf, rt) = (registration(&was), registration(&is));
                let mut lifecycle = Vec::new();
                // A status is a move only between two known values, whatever their casing: a
                // status briefly missing (null) is neither a move to "/" nor, when it comes
                // back, a second close.
                let folded = |s: &(String, String)| (s.0.to_lowercase(), s.1.to_lowercase());
                let known = !from.0.is_empty() && !to.0.is_empty();
                if known && folded(&from) != folded(&to) {
                    lifecycle.push((
                        EventKind::ReferralStatusChanged,
                        StatusChanged {
                            from: format!("{}/{}", from.0, from.1),
                            to: format!("{}/{}", to.0, to.1),
                            from_status: from.0.to_string(),
                            from_substatus: from.1.to_string(),
                            to_status: to.0.to_string(),
                            to_substatus: to.1.to_string(),
                        }
                        .to_data(),
                    ));
                    let closed =
                        |s: &str| s.parse::<ReferralStatus>().ok() == Some(ReferralStatus::Closed);
                    if closed(&to.0) && !closed(&from.0) {
                        let outcome = to.1.to_string();
                        lifecycle.push((EventKind::ReferralClosed, Closed { outcome }.to_data()));
                    }
                }
                if rf != rt {
                    lifecycle.push((
                        EventKind::ReferralRegistrationChanged,
                        json!({ "from": rf, "to": rt }),
                    ));
                }
                let expired = |s: &str| {
                    s.parse::<ReferralSubstatus>().ok() == Some(ReferralSubstatus::Expired)
                };
                let api_expired = if expired(&to.1) && !expired(&from.1) {
                    expiry::any_deadline(&old).map(|deadline| {
                        let mut e = expiry::expired_event(
                            &entity_id,
                            new.value().clone(),
                            deadline,
                            now,
                            "Partner Center archived it as Expired",
                        );
                        e.previous = Some(old.clone());
                        e
                    })
                } else {
                    None
                };
                let follow: Vec<Event> = lifecycle
                    .into_iter()
                    .map(|(kind, data)| {
                        event(
                            kind,
                            &hashes,
                            new.clone(),
                            Some(old.clone()),
                            Vec::new(),
                            data,
                        )
                    })
                    .chain(api_expired)
                    .collect();
                // The plain change comes first and takes the records without a copy.
                out.push(event(
                    EventKind::ReferralChanged,
                    &hashes,
                    new,
                    Some(old),
                    c.changes,
                    empty(),
                ));
                out.extend(follow);
            }
            (None, None) => {}
        }
    }
    out
}

/// A policy name of the deal-registration eligibility check in words.
pub fn policy_words(name: &str) -> String {
    match name {
        "isDealTypeCosellOrPartnerLed" => "co-sell deal type".into(),
        "isMicrosoftReferralAcceptedOrWon" => "accepted or won".into(),
        "isSolutionIncentiveEligible" => "an Azure IP co-sell eligible solution".into(),
        "isDealValueEligible" => "deal value over 25,000 USD".into(),
        "isCustomerManaged" => "Microsoft-managed customer".into(),
        other => {
            let mut out = String::new();
            for c in other.trim_start_matches("is").chars() {
                if c.is_uppercase() && !out.is_empty() {
                    out.push(' ');
                }
                out.extend(c.to_lowercase());
            }
            out
        }
    }
}

/// Whether a referral is one whose deal registration may be checked: Shared and
/// Active/Accepted.
pub fn wants_eligibility(r: &Value) -> bool {
    let (s, sub) = status(r);
    text(r, &["type"]).is_some_and(|t| t.eq_ignore_ascii_case("Shared"))
        && s.eq_ignore_ascii_case("Active")
        && sub.eq_ignore_ascii_case("Accepted")
}

/// The id of the eligibility event of this version of the referral (its id and `eTag`):
/// the check is made once per version.
pub fn eligibility_event_id(record: &Value) -> String {
    let id = text(record, &["id"]).unwrap_or_default();
    let tag = text(record, &["eTag"]).unwrap_or_default();
    crate::model::event::event_id(&[
        b"referral.registration_eligibility",
        id.as_bytes(),
        tag.as_bytes(),
    ])
}

/// `referral.registration_eligibility` from Partner Center's answer to the eligibility check
/// of `record` (its `passedPolicies`/`failedPolicies`), once per version of the referral.
pub fn eligibility_event(record: &Value, answer: &Value, now: Timestamp) -> Event {
    let id = text(record, &["id"]).unwrap_or_default().to_string();
    let names = |key: &str| -> Vec<String> {
        answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p["policyName"].as_str().map(str::to_string))
            .collect()
    };
    let (passed, failed) = (names("passedPolicies"), names("failedPolicies"));
    let words = |list: &[String]| {
        list.iter()
            .map(|p| policy_words(p))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Event {
        id: eligibility_event_id(record),
        kind: EventKind::ReferralRegistrationEligibility,
        source: SOURCE.to_string(),
        entity_id: id,
        detected_at: now,
        record: record.clone().into(),
        previous: None,
        changes: Vec::new(),
        data: json!({
            "isEligible": answer["isEligible"].as_bool().unwrap_or(false),
            "passed": passed,
            "failed": failed,
            "passed_words": words(&passed),
            "failed_words": words(&failed),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_version_is_read_only_for_the_fields_that_decide_the_events() {
        let old = br#"{"id": "r1", "status": "New", "SubStatus": "Pending", "registrationStatus": "None", "details": {"dealValue": 1}}"#;
        let new = json!({"id": "r1", "status": "Active", "substatus": "Accepted", "registrationStatus": "Submitted", "details": {"dealValue": 2}});
        let changes =
            super::super::diff::changes_in_text(old, &serde_json::to_vec(&new).unwrap()).unwrap();
        let change = RecordChange {
            entity_id: "r1".into(),
            old: Some((1, Doc::from_text(&old[..]))),
            new: Some((2, new.into())),
            changes,
            version: 0,
        };
        let events = detect(vec![change], false, "2026-12-04T05:00:00Z".parse().unwrap());
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::ReferralChanged,
                EventKind::ReferralStatusChanged,
                EventKind::ReferralRegistrationChanged
            ]
        );
        assert_eq!(
            events[1].data["from"], "New/Pending",
            "the casing of SubStatus"
        );
        assert_eq!(events[1].data["to"], "Active/Accepted");
        assert_eq!(events[2].data, json!({"from": "None", "to": "Submitted"}));
        for e in &events {
            let previous = e.previous.as_ref().unwrap();
            assert!(
                !previous.is_parsed(),
                "{}: previous left as text",
                e.kind.as_str()
            );
            assert_eq!(previous["details"]["dealValue"], 1);
        }
    }
}
