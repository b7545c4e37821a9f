//! Property tests: diffing is exact for random records and random mutations.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use partnerwatch::detect::{self, diff, SweepDiff};
use partnerwatch::model::EventKind;
use partnerwatch::store::Store;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        "[a-z\"<>*_\n🎉 ]{0,12}".prop_map(|s| json!(s)),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z/~]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Drops null members and trailing null array elements: the diff treats a null and an
/// absent field alike.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(a) => {
            let mut a: Vec<Value> = a.iter().map(normalize).collect();
            while a.last().is_some_and(Value::is_null) {
                a.pop();
            }
            Value::Array(a)
        }
        other => other.clone(),
    }
}

/// Applies field-level changes to `target` by JSON pointer.
fn apply(target: &mut Value, changes: &[partnerwatch::model::Change]) {
    for c in changes {
        if c.path == "/" {
            *target = c.new.clone();
            continue;
        }
        let parts: Vec<String> = c.path[1..]
            .split('/')
            .map(|p| p.replace("~1", "/").replace("~0", "~"))
            .collect();
        let mut node = &mut *target;
        for (i, part) in parts.iter().enumerate() {
            let last = i == parts.len() - 1;
            if let Ok(idx) = part.parse::<usize>() {
                if let Value::Array(a) = node {
                    while a.len() <= idx {
                        a.push(Value::Null);
                    }
                    if last {
                        a[idx] = c.new.clone();
                        break;
                    }
                    node = &mut a[idx];
                    continue;
                }
            }
            if !node.is_object() {
                *node = Value::Object(Map::new());
            }
            let obj = node.as_object_mut().unwrap();
            if last {
                obj.insert(part.clone(), c.new.clone());
                break;
            }
            node = obj.entry(part.clone()).or_insert(Value::Object(Map::new()));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn changes_turn_the_old_version_into_the_new(old in value(), new in value()) {
        let changes = diff::changes(&old, &new);
        let mut patched = old.clone();
        apply(&mut patched, &changes);
        prop_assert_eq!(normalize(&patched), normalize(&new));
        prop_assert_eq!(changes.is_empty(), normalize(&old) == normalize(&new));
    }

    /// Compared as text, in either spelling, two documents differ exactly as their values do.
    #[test]
    fn changes_in_text_are_the_changes_of_the_values(
        old in value(),
        new in value(),
        pretty in any::<(bool, bool)>(),
    ) {
        let text = |v: &Value, pretty: bool| match pretty {
            true => serde_json::to_vec_pretty(v).unwrap(),
            false => serde_json::to_vec(v).unwrap(),
        };
        let (a, b) = (text(&old, pretty.0), text(&new, pretty.1));
        prop_assert_eq!(diff::changes_in_text(&a, &b).unwrap(), diff::changes(&old, &new));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A sweep over randomly mutated records reports exactly the added, changed and removed ids.
    #[test]
    fn sweep_reports_exactly_the_mutated_records(
        records in prop::collection::btree_map("[a-f0-9]{8}", value(), 1..40),
        changed in prop::collection::btree_set(0usize..40, 0..10),
        removed in prop::collection::btree_set(0usize..40, 0..10),
        added in prop::collection::btree_map("new-[a-f0-9]{6}", value(), 0..5),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = Timestamp::UNIX_EPOCH;
        let sweep = |set: &BTreeMap<String, Value>, baseline: bool| {
            let mut d = SweepDiff::new(&store, "referrals", baseline, detect::sweep::keep_none).unwrap();
            for (id, v) in set {
                d.ingest(id, serde_json::to_vec(&json!({"id": id, "body": v})).unwrap().as_slice()).unwrap();
            }
            let mut outcome = d.finish(true).unwrap();
            let events = detect::referrals::detect(std::mem::take(&mut outcome.changes), baseline, now);
            outcome.commit.completed_at = Some(now);
            store.commit_sweep(&outcome.commit, &[], &[]).unwrap();
            events
        };
        prop_assert!(sweep(&records, true).is_empty());

        let ids: Vec<String> = records.keys().cloned().collect();
        let mut next = records.clone();
        let mut want_changed = BTreeSet::new();
        let mut want_removed = BTreeSet::new();
        for i in &changed {
            if let Some(id) = ids.get(*i) {
                let marker = json!({"mutated": i});
                if next[id] != marker {
                    next.insert(id.clone(), marker);
                    want_changed.insert(id.clone());
                }
            }
        }
        for i in &removed {
            if let Some(id) = ids.get(*i) {
                next.remove(id);
                want_changed.remove(id);
                want_removed.insert(id.clone());
            }
        }
        for (id, v) in &added {
            next.insert(id.clone(), v.clone());
        }
        let events = sweep(&next, false);
        let of = |k: EventKind| events.iter().filter(|e| e.kind == k).map(|e| e.entity_id.clone()).collect::<BTreeSet<_>>();
        prop_assert_eq!(of(EventKind::ReferralNew), added.keys().cloned().collect::<BTreeSet<_>>());
        prop_assert_eq!(of(EventKind::ReferralChanged), want_changed);
        prop_assert_eq!(of(EventKind::ReferralRemoved), want_removed);
        prop_assert!(sweep(&next, false).is_empty(), "a repeated sweep finds nothing");
    }
}
