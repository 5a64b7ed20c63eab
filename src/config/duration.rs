//! Durations as the configuration file writes them: `90s`, `15m`, `24h`, `365d`.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use time::Duration;

/// A duration written `90s`, `15m`, `24h` or `365d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigDuration(pub Duration);

impl FromStr for ConfigDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a duration like 90s, 15m, 24h or 365d");
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(unit_at);
        let n: i64 = digits.parse().map_err(|_| bad())?;
        let seconds = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(bad()),
        };
        n.checked_mul(seconds)
            .filter(|s| *s <= 100 * 365 * 86400)
            .map(|s| ConfigDuration(Duration::seconds(s)))
            .ok_or_else(bad)
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for ConfigDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0.whole_seconds())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_refuse_garbage() {
        assert_eq!(
            "90s".parse::<ConfigDuration>().unwrap().0,
            Duration::seconds(90)
        );
        assert_eq!(
            "15m".parse::<ConfigDuration>().unwrap().0,
            Duration::minutes(15)
        );
        assert_eq!(
            "24h".parse::<ConfigDuration>().unwrap().0,
            Duration::hours(24)
        );
        assert_eq!("2d".parse::<ConfigDuration>().unwrap().0, Duration::days(2));
        for bad in ["", "15", "m", "1.5h", "-1s", "10 m", "99999999999999d"] {
            assert!(bad.parse::<ConfigDuration>().is_err(), "{bad}");
        }
    }
}
