//! License usage events: `license.new` for a row not seen before, `license.usage_changed` when a
//! row's `processedDateTime` advances (Partner Center reprocessed the usage) — a row whose other
//! fields move without a new processing date is stored, not announced.

use jiff::Timestamp;
use serde_json::{json, Value};

use super::record_event;
use super::RecordChange;
use crate::model::event_data::{ActiveLicenses, EventData, FromTo, UsageChanged};
use crate::model::license::LicenseUsageRow;
use crate::model::{Dataset, Event, EventKind};

const SOURCE: &str = Dataset::LicenseUsage.name();

fn row(r: &Value) -> LicenseUsageRow {
    serde_json::from_value(r.clone()).unwrap_or_default()
}

pub fn detect(changes: Vec<RecordChange>, baseline: bool, now: Timestamp) -> Vec<Event> {
    if baseline {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in changes {
        // The occurrence of this change is part of its events' ids (guarantee 10).
        let seq = u128::from(c.version);
        match (c.old, c.new) {
            (None, Some((h, new))) => out.push(record_event(
                EventKind::LicenseNew,
                SOURCE,
                &c.entity_id,
                &[h, seq],
                new,
                None,
                Vec::new(),
                json!({}),
                now,
            )),
            (Some((oh, old)), Some((nh, new))) => {
                let (was, is) = (row(&old), row(&new));
                let (before, after) = (
                    was.processed_date_time.clone(),
                    is.processed_date_time.clone(),
                );
                // ISO dates compare as text; only a later processing date is news.
                if after > before {
                    let (from, to) = (was.licenses_active, is.licenses_active);
                    let data = UsageChanged {
                        processed_date_time: after,
                        previous_processed_date_time: before,
                        licenses_active: ActiveLicenses {
                            from,
                            to,
                            delta: to.zip(from).map(|(t, f)| t - f),
                        },
                        licenses_qualified: FromTo {
                            from: was.licenses_qualified,
                            to: is.licenses_qualified,
                        },
                    }
                    .to_data();
                    out.push(record_event(
                        EventKind::LicenseUsageChanged,
                        SOURCE,
                        &c.entity_id,
                        &[oh, nh, seq],
                        new,
                        Some(old),
                        c.changes,
                        data,
                        now,
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: Value, new: Value) -> RecordChange {
        RecordChange::between("t|p|w", Some((1, old)), Some((2, new)))
    }

    #[test]
    fn only_a_new_processing_date_is_a_change() {
        let now = Timestamp::UNIX_EPOCH;
        let same_day = change(
            json!({"processedDateTime": "2026-11-20T00:00:00", "licenseActive": 5}),
            json!({"processedDateTime": "2026-11-20T00:00:00", "licenseActive": 7}),
        );
        assert!(detect(vec![same_day], false, now).is_empty());
        let next_day = change(
            json!({"processedDateTime": "2026-11-20T00:00:00", "licenseActive": 5}),
            json!({"processedDateTime": "2026-11-21T00:00:00", "licensesActive": 3}),
        );
        let e = detect(vec![next_day], false, now);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].data["licensesActive"]["delta"], -2);
    }
}
