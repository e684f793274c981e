//! RFM segments and activity states: who are the shop's best customers, who is drifting away.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

/// Activity states that override nothing but are counted beside the RFM segments.
pub const AT_RISK_DAYS: i64 = 30;

pub const DORMANT_DAYS: i64 = 90;

pub fn activity_state(
    last_active: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<&'static str> {
    let idle = (now - last_active.unwrap_or(created)).num_days();
    if idle >= DORMANT_DAYS {
        Some("dormant")
    } else if idle >= AT_RISK_DAYS {
        Some("at_risk")
    } else {
        None
    }
}

/// One member's recency (days since the last purchase, or since joining), frequency and
/// monetary value (purchases and spend in the last 12 months).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rfm {
    pub recency_days: i64,
    pub frequency: i64,
    pub monetary: Decimal,
}

/// The eight classic RFM segments: each of R, F and M is high when it is better than the
/// average of all members (recency: fewer days), low otherwise.
pub fn rfm_segments(members: &[Rfm]) -> Vec<&'static str> {
    if members.is_empty() {
        return Vec::new();
    }
    let n = Decimal::from(members.len() as i64);
    let avg_r = Decimal::from(members.iter().map(|m| m.recency_days).sum::<i64>()) / n;
    let avg_f = Decimal::from(members.iter().map(|m| m.frequency).sum::<i64>()) / n;
    let avg_m = members.iter().map(|m| m.monetary).sum::<Decimal>() / n;
    members
        .iter()
        .map(|m| {
            let r = Decimal::from(m.recency_days) <= avg_r;
            let f = Decimal::from(m.frequency) > avg_f
                || (m.frequency > 0 && Decimal::from(m.frequency) == avg_f);
            let v = m.monetary > avg_m || (m.monetary > Decimal::ZERO && m.monetary == avg_m);
            match (r, f, v) {
                (true, true, true) => "important_value",
                (false, true, true) => "important_retain",
                (true, false, true) => "important_develop",
                (false, false, true) => "important_winback",
                (true, true, false) => "general_value",
                (false, true, false) => "general_retain",
                (true, false, false) => "general_develop",
                (false, false, false) => "general_winback",
            }
        })
        .collect()
}

pub const RFM_SEGMENTS: &[&str] = &[
    "important_value",
    "important_retain",
    "important_develop",
    "important_winback",
    "general_value",
    "general_retain",
    "general_develop",
    "general_winback",
];

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn activity_turns_at_risk_after_thirty_days_and_dormant_after_ninety() {
        let now = at("2026-11-24T00:00:00Z");
        let created = now - Duration::days(400);
        assert_eq!(
            activity_state(Some(now - Duration::days(29)), created, now),
            None
        );
        assert_eq!(
            activity_state(Some(now - Duration::days(30)), created, now),
            Some("at_risk")
        );
        assert_eq!(activity_state(None, created, now), Some("dormant"));
    }

    #[test]
    fn rfm_puts_the_best_customers_in_important_value_and_idle_ones_in_winback() {
        let m = |r, f, v: &str| Rfm {
            recency_days: r,
            frequency: f,
            monetary: d(v),
        };
        let segments = rfm_segments(&[
            m(3, 12, "5000"),
            m(200, 0, "0"),
            m(10, 1, "3000"),
            m(300, 8, "100"),
        ]);
        assert_eq!(
            segments,
            vec![
                "important_value",
                "general_winback",
                "important_develop",
                "general_retain"
            ]
        );
    }
}
