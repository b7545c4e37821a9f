//! A rule's `when`: a CEL expression over the event, compiled once when the rules load.
//! Variables: `event` (the whole event), `record`, `previous`, `changes`, `data`, `kind`.
//! An expression that fails on an event (a field it reads is missing: guard it with `has()`)
//! does not match, and the failure is logged with the rule's name.

use std::sync::Arc;

use crate::model::Event;

/// The variables a condition may use.
pub const VARIABLES: [&str; 6] = ["event", "record", "previous", "changes", "data", "kind"];

/// A compiled `when`.
#[derive(Clone)]
pub struct Condition {
    source: String,
    program: Arc<cel::Program>,
}

impl std::fmt::Debug for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    /// Compiles `source`; the error says what is wrong and at which column of the expression.
    pub fn compile(source: &str) -> Result<Condition, String> {
        let program = cel::Program::compile(source).map_err(|errors| {
            errors
                .errors
                .iter()
                .map(|e| format!("column {}: {}", e.pos.1.max(1), e.msg))
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let references = program.references();
        let mut unknown: Vec<&str> = references
            .variables()
            .into_iter()
            .filter(|v| !VARIABLES.contains(v))
            .collect();
        unknown.sort_unstable();
        if !unknown.is_empty() {
            return Err(format!(
                "unknown variable {} (use {})",
                unknown.join(", "),
                VARIABLES.join(", ")
            ));
        }
        Ok(Condition {
            source: source.to_string(),
            program: Arc::new(program),
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition for `event`: `Ok(true)` to send, `Ok(false)` not to, `Err` when
    /// the expression cannot be evaluated on this event or is not a boolean.
    pub fn eval(&self, event: &Event) -> Result<bool, String> {
        let mut ctx = cel::Context::default();
        let err = |e: cel::SerializationError| e.to_string();
        ctx.add_variable("event", event).map_err(err)?;
        ctx.add_variable("record", &event.record).map_err(err)?;
        ctx.add_variable("previous", &event.previous).map_err(err)?;
        ctx.add_variable("changes", &event.changes).map_err(err)?;
        ctx.add_variable("data", &event.data).map_err(err)?;
        ctx.add_variable("kind", event.kind.as_str()).map_err(err)?;
        match self.program.execute(&ctx) {
            Ok(cel::Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("`when` must give true or false, it gave {other:?}")),
            Err(e) => Err(explain(&e.to_string())),
        }
    }
}

/// CEL's words for a failed evaluation, with what to do about it.
fn explain(error: &str) -> String {
    if error.contains("no matching overload") {
        format!("{error}: the two sides have different types — compare a number with a number (50000, not \"50000\") and text with text")
    } else if let Some(key) = error.strip_prefix("No such key: ") {
        format!("the event has no field `{key}` (names are case-sensitive, e.g. dealValue); guard a field that not every event has with has(record.…)")
    } else {
        error.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(record: serde_json::Value) -> Event {
        Event {
            id: "e".into(),
            kind: crate::model::EventKind::ReferralNew,
            source: "referrals".into(),
            entity_id: "r".into(),
            detected_at: "2026-11-23T08:00:00Z".parse().unwrap(),
            record: record.into(),
            previous: None,
            changes: vec![],
            data: json!({"direction": "worse"}),
        }
    }

    #[test]
    fn conditions_read_the_event() {
        let c = Condition::compile(
            r#"record.direction == "Incoming" && record.details.dealValue >= 10000"#,
        )
        .unwrap();
        assert!(c
            .eval(&event(
                json!({"direction": "Incoming", "details": {"dealValue": 25000}})
            ))
            .unwrap());
        assert!(!c
            .eval(&event(
                json!({"direction": "Incoming", "details": {"dealValue": 500}})
            ))
            .unwrap());
        assert!(
            c.eval(&event(json!({"direction": "Incoming"}))).is_err(),
            "a missing field is an error"
        );
        let guarded =
            Condition::compile(r#"has(record.details) && record.details.dealValue > 1"#).unwrap();
        assert!(!guarded.eval(&event(json!({}))).unwrap());
        let c = Condition::compile(
            r#"data.direction == "worse" && kind == "referral.new" && previous == null"#,
        )
        .unwrap();
        assert!(c.eval(&event(json!({}))).unwrap());
    }

    #[test]
    fn compile_errors_name_the_problem() {
        assert!(Condition::compile("record.x ==")
            .unwrap_err()
            .contains("column"));
        assert!(Condition::compile("recrod.x == 1")
            .unwrap_err()
            .contains("unknown variable recrod"));
        assert!(Condition::compile("record.details").is_ok());
        assert!(Condition::compile("record.details")
            .unwrap()
            .eval(&event(json!({"details": 1})))
            .unwrap_err()
            .contains("true or false"));
    }
}
