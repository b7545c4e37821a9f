//! `quiet_hours: "20:00-07:00"`: messages of a rule created inside the window are held until
//! it ends (in the configured time zone), not dropped. A window may span midnight.

use jiff::civil::Time;
use jiff::tz::TimeZone;
use jiff::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: Time,
    end: Time,
}

impl std::str::FromStr for QuietHours {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a window: write HH:MM-HH:MM, like 20:00-07:00");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| -> Result<Time, String> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            Time::new(h, m, 0, 0).map_err(|_| bad())
        };
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(format!("{s:?} is an empty window"));
        }
        Ok(QuietHours { start, end })
    }
}

impl QuietHours {
    /// When a message created at `now` may go out: `None` if now is outside the window, else
    /// the end of the window.
    pub fn release(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = now.to_zoned(tz.clone());
        let t = local.time();
        let inside = if self.start < self.end {
            t >= self.start && t < self.end
        } else {
            t >= self.start || t < self.end
        };
        if !inside {
            return None;
        }
        let mut day = local.date();
        if t >= self.end {
            day = day.tomorrow().ok()?;
        }
        day.to_datetime(self.end)
            .to_zoned(tz.clone())
            .ok()
            .map(|z| z.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_across_midnight_release_at_their_end_in_local_time() {
        let q: QuietHours = "20:00-07:00".parse().unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 21:30 in Berlin (CET, UTC+1) is 20:30Z: held until 07:00 Berlin = 06:00Z next day.
        let held = q
            .release("2026-11-23T20:30:00Z".parse().unwrap(), &berlin)
            .unwrap();
        assert_eq!(held, "2026-11-24T06:00:00Z".parse().unwrap());
        // 05:00 Berlin: held until 07:00 the same day.
        assert_eq!(
            q.release("2026-11-24T04:00:00Z".parse().unwrap(), &berlin),
            Some("2026-11-24T06:00:00Z".parse().unwrap())
        );
        // 12:00 Berlin: not quiet.
        assert_eq!(
            q.release("2026-11-24T11:00:00Z".parse().unwrap(), &berlin),
            None
        );
        let lunch: QuietHours = "12:00-13:00".parse().unwrap();
        assert_eq!(
            lunch.release("2026-11-24T12:30:00Z".parse().unwrap(), &TimeZone::UTC),
            Some("2026-11-24T13:00:00Z".parse().unwrap())
        );
        assert!("25:00-07:00".parse::<QuietHours>().is_err());
        assert!("evening".parse::<QuietHours>().is_err());
    }
}
