//! When a digest is due: a cron expression (croner) read in the configured time zone (jiff),
//! so "0 8 * * MON" means eight o'clock on the wall clock in winter and in summer. A slot
//! missed while the service was down is still due for a day after it passed.

use std::str::FromStr;

use croner::Cron;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, Zoned};

/// A missed slot is sent on start if it passed less than this long ago.
pub const CATCH_UP: SignedDuration = SignedDuration::from_hours(24);

#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: TimeZone,
}

impl Schedule {
    /// Parses a five-field cron expression (or `@weekly` and friends); the error says what is
    /// wrong in croner's words.
    pub fn parse(expression: &str, tz: TimeZone) -> Result<Schedule, String> {
        let cron = Cron::from_str(expression.trim()).map_err(|e| {
            format!("{expression:?} is not a cron schedule ({e}); e.g. \"0 8 * * MON\" is Mondays at 08:00")
        })?;
        Ok(Schedule { cron, tz })
    }

    /// The latest slot at or before `now`.
    pub fn previous(&self, now: Timestamp) -> Option<Timestamp> {
        let at = now.to_zoned(self.tz.clone());
        self.cron
            .find_previous_occurrence(&at, true)
            .ok()
            .map(|z: Zoned| z.timestamp())
    }

    /// The first slot after `now`.
    pub fn next(&self, now: Timestamp) -> Option<Timestamp> {
        let at = now.to_zoned(self.tz.clone());
        self.cron
            .find_next_occurrence(&at, false)
            .ok()
            .map(|z: Zoned| z.timestamp())
    }

    /// The slot to send now, if one passed less than [`CATCH_UP`] ago.
    pub fn due(&self, now: Timestamp) -> Option<Timestamp> {
        self.previous(now)
            .filter(|slot| now.duration_since(*slot) < CATCH_UP)
    }

    /// A human description of the schedule ("At 08:00 on Monday").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin(expr: &str) -> Schedule {
        Schedule::parse(expr, TimeZone::get("Europe/Berlin").unwrap()).unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn monday_eight_is_local_time_on_both_sides_of_the_dst_changes() {
        let s = berlin("0 8 * * MON");
        // Summer time ends 2026-10-25: 08:00 CEST is 06:00Z, 08:00 CET is 07:00Z.
        assert_eq!(
            s.next(t("2026-10-17T12:00:00Z")),
            Some(t("2026-10-19T06:00:00Z"))
        );
        assert_eq!(
            s.next(t("2026-10-19T06:00:00Z")),
            Some(t("2026-10-26T07:00:00Z"))
        );
        // Summer time starts 2027-03-28.
        assert_eq!(
            s.next(t("2027-03-23T00:00:00Z")),
            Some(t("2027-03-29T06:00:00Z"))
        );
        assert_eq!(
            s.previous(t("2027-03-29T05:59:59Z")),
            Some(t("2027-03-22T07:00:00Z"))
        );
    }

    #[test]
    fn a_slot_inside_the_spring_gap_or_the_autumn_fold_fires_once() {
        let s = berlin("30 2 * * *");
        // 02:30 does not exist on 2027-03-28: the slot moves to 03:00 CEST (01:00Z) that day.
        assert_eq!(
            s.next(t("2027-03-27T12:00:00Z")),
            Some(t("2027-03-28T01:00:00Z"))
        );
        assert_eq!(
            s.next(t("2027-03-28T01:00:00Z")),
            Some(t("2027-03-29T00:30:00Z"))
        );
        // 02:30 happens twice on 2026-10-25: one slot, not two.
        let first = s.next(t("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(
            first,
            t("2026-10-25T00:30:00Z"),
            "the first 02:30, still CEST"
        );
        assert_eq!(
            s.next(first),
            Some(t("2026-10-26T01:30:00Z")),
            "not the second 02:30"
        );
    }

    #[test]
    fn a_missed_slot_is_due_for_a_day_then_no_more() {
        let s = berlin("0 8 * * MON");
        let slot = t("2026-11-23T07:00:00Z");
        assert_eq!(s.due(slot), Some(slot));
        assert_eq!(s.due(t("2026-11-24T06:59:59Z")), Some(slot));
        assert_eq!(s.due(t("2026-11-24T07:00:00Z")), None);
        assert_eq!(
            s.due(t("2026-11-23T06:59:59Z")),
            None,
            "last week's is over a day old"
        );
    }

    #[test]
    fn a_bad_expression_says_what_a_good_one_looks_like() {
        let e = Schedule::parse("every monday", TimeZone::UTC).unwrap_err();
        assert!(e.contains("0 8 * * MON"), "{e}");
    }
}
