//! The page's vocabulary in Traditional Chinese and English: the
//! [`Bilingual`] pair every text is written as, and the words for
//! durations, profiles and statuses.

use time::Duration;

/// A sentence or title in Traditional Chinese and English.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bilingual {
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    pub fn new(zh: impl Into<String>, en: impl Into<String>) -> Self {
        Self {
            zh: zh.into(),
            en: en.into(),
        }
    }
}

/// Whole minutes, rounded up (a promise must not be shorter than the
/// truth), and at least one.
pub fn minutes(d: Duration) -> i64 {
    let seconds = d.whole_seconds().max(1);
    (seconds + 59) / 60
}

/// `15 分鐘` / `15 minutes`; long spans also in hours: `1440 minutes (24 hours)`.
pub fn in_minutes(d: Duration) -> Bilingual {
    let m = minutes(d);
    let unit = if m == 1 { "minute" } else { "minutes" };
    if m >= 120 && m % 60 == 0 {
        let h = m / 60;
        Bilingual::new(
            format!("{m} 分鐘（{h} 小時）"),
            format!("{m} {unit} ({h} hours)"),
        )
    } else {
        Bilingual::new(format!("{m} 分鐘"), format!("{m} {unit}"))
    }
}

/// Bilingual names of the development profiles; others show as configured.
pub fn profile_name(profile: &str) -> Bilingual {
    match profile {
        "person-sign" => Bilingual::new("簽章用", "Signature"),
        "person-encrypt" => Bilingual::new("加密用", "Encryption"),
        other => Bilingual::new(other, other),
    }
}

/// Bilingual status words.
pub fn status_name(status: &str) -> Bilingual {
    match status {
        "good" => Bilingual::new("正常", "Valid"),
        "suspended" => Bilingual::new("暫禁", "Suspended (on hold)"),
        "revoked" => Bilingual::new("已廢止", "Revoked"),
        other => Bilingual::new(other, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_round_up() {
        assert_eq!(minutes(Duration::seconds(2)), 1);
        assert_eq!(minutes(Duration::minutes(15)), 15);
        assert_eq!(minutes(Duration::seconds(61)), 2);
        assert_eq!(minutes(Duration::hours(24)), 1440);
    }

    #[test]
    fn long_spans_are_also_said_in_hours() {
        assert_eq!(
            in_minutes(Duration::hours(24)).en,
            "1440 minutes (24 hours)"
        );
        assert_eq!(in_minutes(Duration::minutes(15)).zh, "15 分鐘");
        assert_eq!(in_minutes(Duration::seconds(2)).en, "1 minute");
    }
}
