//! Durations as people write them in the configuration and rules: `30s`, `5m`, `6h`, `7d`.

use std::fmt;
use std::time::Duration;

/// A configured duration such as `5m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Every(pub Duration);

impl Every {
    pub fn as_duration(self) -> Duration {
        self.0
    }

    pub fn signed(self) -> jiff::SignedDuration {
        jiff::SignedDuration::try_from(self.0).unwrap_or(jiff::SignedDuration::MAX)
    }
}

impl std::str::FromStr for Every {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| {
            format!("{s:?} is not a duration: write a number and a unit, like 30s, 5m, 6h or 7d")
        })?;
        let millis = match unit.trim() {
            "ms" => n,
            "s" => n.saturating_mul(1000),
            "m" => n.saturating_mul(60_000),
            "h" => n.saturating_mul(3_600_000),
            "d" => n.saturating_mul(86_400_000),
            other => {
                return Err(format!(
                    "{s:?}: unknown unit {other:?}; use ms, s, m, h or d (30s, 5m, 6h, 7d)"
                ))
            }
        };
        Ok(Every(Duration::from_millis(millis)))
    }
}

impl fmt::Display for Every {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.subsec_millis() != 0 {
            return write!(f, "{}ms", self.0.as_millis());
        }
        let s = self.0.as_secs();
        match s {
            0 => write!(f, "0s"),
            _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400),
            _ if s % 3600 == 0 => write!(f, "{}h", s / 3600),
            _ if s % 60 == 0 => write!(f, "{}m", s / 60),
            _ => write!(f, "{s}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_documented_unit() {
        for (text, millis) in [
            ("30s", 30_000),
            ("5m", 300_000),
            ("6h", 21_600_000),
            ("7d", 604_800_000),
            ("250ms", 250),
        ] {
            let every: Every = text.parse().unwrap();
            assert_eq!(every.0.as_millis(), millis);
            assert_eq!(every.to_string(), text);
        }
        assert!("5 minutes"
            .parse::<Every>()
            .unwrap_err()
            .contains("unknown unit"));
        assert!("m".parse::<Every>().is_err());
    }
}
