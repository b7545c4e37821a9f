//! The simulator speaks the Referrals API as documented, quirks included.

mod common;

use serde_json::Value;

async fn get(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requires_a_bearer_token() {
    let sim = common::sim(5, 5).await;
    let url = format!("{}/engagements/referrals", sim.referrals_base_url());
    assert_eq!(get(&url, None).await.0, 401);
    assert_eq!(get(&url, Some("wrong")).await.0, 401);
    assert_eq!(get(&url, Some(sim.token())).await.0, 200);
}

#[tokio::test]
async fn pages_carry_count_and_a_next_link_like_the_docs_sample() {
    let sim = common::sim(12, 5).await;
    let url = format!(
        "{}/engagements/referrals?$orderby=createdDateTime desc",
        sim.referrals_base_url()
    );
    let (status, page) = get(&url, Some(sim.token())).await;
    assert_eq!(status, 200);
    assert_eq!(page["@odata.count"], 12);
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    let created: Vec<&str> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["createdDateTime"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "descending: {created:?}"
    );
    let next = page["@odata.nextLink"].as_str().unwrap();
    assert!(
        next.starts_with(&format!("http://{}/v1.0/referrals?$skiptoken=", sim.addr())),
        "{next}"
    );
    // Followed literally, the documented link leads nowhere: clients must keep their own path.
    assert_eq!(get(next, Some(sim.token())).await.0, 404);

    let skip = next.split_once('?').unwrap().1;
    let (_, page2) = get(
        &format!("{}/engagements/referrals?{skip}", sim.referrals_base_url()),
        Some(sim.token()),
    )
    .await;
    assert_eq!(page2["value"].as_array().unwrap().len(), 5);
    let first_ids: Vec<&Value> = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["id"])
        .collect();
    assert!(page2["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| !first_ids.contains(&&r["id"])));
}

#[tokio::test]
async fn filters_and_top_and_bad_queries() {
    let sim = common::sim(40, 100).await;
    let base = format!("{}/engagements/referrals", sim.referrals_base_url());
    let (_, page) = get(
        &format!("{base}?$filter=status eq 'Closed' or substatus eq 'Accepted'"),
        Some(sim.token()),
    )
    .await;
    let expected = sim
        .state()
        .referrals()
        .iter()
        .filter(|r| r["status"] == "Closed" || r["substatus"] == "Accepted")
        .count();
    assert_eq!(page["@odata.count"], expected);
    assert!(page["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["status"] == "Closed" || r["substatus"] == "Accepted"));

    let (_, page) = get(&format!("{base}?$top=3"), Some(sim.token())).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 3);
    assert!(page["@odata.nextLink"].is_string());

    // The documented lambda filter: the referrals whose partner team has that member.
    let email = sim.state().referrals()[0]["team"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = get(
        &format!("{base}?$filter=team/any(t:t/email eq '{email}')"),
        Some(sim.token()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let found = body["value"].as_array().unwrap();
    assert!(!found.is_empty());
    assert!(found.iter().all(|r| r["team"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["email"] == email.as_str())));
    let (status, body) = get(
        &format!("{base}?$filter=team/any(t/email eq 'x')"),
        Some(sim.token()),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("$filter"));
}

#[tokio::test]
async fn every_documented_property_is_present_and_names_are_hostile() {
    let sim = common::sim(60, 100).await;
    let s = sim.state();
    let keys = [
        "id",
        "engagementId",
        "organizationId",
        "organizationName",
        "name",
        "externalReferenceId",
        "createdDateTime",
        "updatedDateTime",
        "expirationDateTime",
        "acceptedDateTime",
        "status",
        "substatus",
        "statusReason",
        "type",
        "qualification",
        "direction",
        "referralSource",
        "callToAction",
        "customerProfile",
        "consent",
        "details",
        "team",
        "inviteContext",
        "eTag",
        "target",
        "mpnId",
        "registrationStatus",
        "registrations",
        "links",
    ];
    for r in s.referrals() {
        for k in keys {
            assert!(r.get(k).is_some(), "{k} missing in {r}");
        }
    }
    let names: String = s
        .referrals()
        .iter()
        .map(|r| r["customerProfile"]["name"].as_str().unwrap())
        .collect();
    for hostile in ['"', '\'', '<', '*', '\n'] {
        assert!(
            names.contains(hostile),
            "no customer name contains {hostile:?}"
        );
    }
    assert!(
        names.chars().any(|c| c as u32 > 0x1F000),
        "no emoji in customer names"
    );
    let statuses: std::collections::BTreeSet<&str> = s
        .referrals()
        .iter()
        .map(|r| r["substatus"].as_str().unwrap())
        .collect();
    assert!(
        statuses.len() >= 3,
        "the life cycle produced a mix: {statuses:?}"
    );
}

#[tokio::test]
async fn unanswered_referrals_expire_after_14_days() {
    let sim = common::sim(0, 10).await;
    let mut s = sim.state();
    let ids = s.add_referrals(20);
    let start = s.now;
    s.advance_to(start + jiff::SignedDuration::from_hours(14 * 24 + 1));
    for id in ids {
        let r = s
            .referrals()
            .iter()
            .find(|r| r["id"] == id.as_str())
            .unwrap();
        assert_ne!(r["status"], "New", "still New after its deadline: {r}");
        if r["substatus"] == "Expired" {
            assert_eq!(r["status"], "Closed");
        }
    }
}

/// The write side as api-docs/referrals-update-and-deal-registration.txt documents it, read
/// strictly: replace/add only, the transition table, If-Match, 204 unless asked for the
/// representation, a new eTag on every change.
#[tokio::test]
async fn patches_follow_the_documented_operations_transitions_and_etags() {
    let sim = common::sim(20, 20).await;
    let (id, etag) = {
        let s = sim.state();
        let r = s
            .referrals()
            .iter()
            .find(|r| r["status"] == "New")
            .unwrap()
            .clone();
        (
            r["id"].as_str().unwrap().to_string(),
            r["eTag"].as_str().unwrap().to_string(),
        )
    };
    let url = format!("{}/engagements/referrals/{id}", sim.referrals_base_url());
    let client = reqwest::Client::new();
    let patch = |ops: Value, headers: Vec<(&'static str, String)>| {
        let mut req = client.patch(&url).bearer_auth(sim.token()).json(&ops);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let tag = resp
                .headers()
                .get("etag")
                .map(|v| v.to_str().unwrap().to_string());
            (status, tag, resp.text().await.unwrap())
        }
    };
    let accept = serde_json::json!([
        {"op": "replace", "path": "/status", "value": "Active"},
        {"op": "replace", "path": "/substatus", "value": "Accepted"}
    ]);
    // Anything but replace/add is refused.
    let (status, _, _) = patch(
        serde_json::json!([{"op": "remove", "path": "/details/notes"}]),
        vec![],
    )
    .await;
    assert_eq!(status, 400);
    // A substatus the new status does not allow (Active takes only Accepted).
    let (status, _, body) = patch(
        serde_json::json!([{"op": "replace", "path": "/status", "value": "Active"},
                           {"op": "replace", "path": "/substatus", "value": "Won"}]),
        vec![],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A stale eTag: 412, nothing changes.
    let (status, _, _) = patch(accept.clone(), vec![("If-Match", "\"stale\"".into())]).await;
    assert_eq!(status, 412);
    assert_eq!(sim.state().stats.patches_applied, 0);
    // The current eTag, no Prefer: 204 and a new eTag.
    let (status, tag, body) = patch(accept.clone(), vec![("If-Match", etag.clone())]).await;
    assert_eq!(status, 204);
    assert!(body.is_empty());
    let new_tag = tag.expect("an ETag header");
    assert_ne!(new_tag, etag);
    // Active cannot go back to New; the old eTag is stale now.
    let (status, _, _) = patch(
        serde_json::json!([{"op": "replace", "path": "/status", "value": "New"},
                           {"op": "replace", "path": "/substatus", "value": "Pending"}]),
        vec![],
    )
    .await;
    assert_eq!(status, 400);
    let win = serde_json::json!([
        {"op": "replace", "path": "/status", "value": "Closed"},
        {"op": "replace", "path": "/substatus", "value": "Won"}
    ]);
    assert_eq!(patch(win.clone(), vec![("If-Match", etag)]).await.0, 412);
    // With Prefer: return=representation, 200 and the referral as changed.
    let (status, _, body) = patch(
        win,
        vec![
            ("If-Match", new_tag),
            ("Prefer", "return=representation".into()),
        ],
    )
    .await;
    assert_eq!(status, 200);
    let r: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (r["status"].as_str(), r["substatus"].as_str()),
        (Some("Closed"), Some("Won"))
    );
    // One referral, and the eligibility check, are there to read.
    let (status, one) = get(&url, Some(sim.token())).await;
    assert_eq!(status, 200);
    assert_eq!(one["substatus"], "Won");
    let answer: Value = client
        .post(format!("{url}/dealregistrations/eligibility"))
        .bearer_auth(sim.token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let policies: usize = ["passedPolicies", "failedPolicies"]
        .iter()
        .map(|k| answer[k].as_array().unwrap().len())
        .sum();
    assert_eq!(policies, 5, "{answer}");
}
