//! Tier rules: the ladder, the tier a growth value reaches, the yearly re-evaluation (down
//! at most one tier), validity and the protection sprint.

use chrono::{DateTime, Duration, Months, Utc};
use rust_decimal::Decimal;

/// A tier as the rules need it.
#[derive(Debug, Clone, PartialEq)]
pub struct TierRule {
    pub code: String,
    pub rank: i32,
    pub growth_threshold: i64,
    pub points_multiplier: Decimal,
    pub birthday_gift: i64,
}

/// A ladder is consistent when the lowest tier needs no growth and each higher rank needs more
/// than the one below, so a member is always in exactly one tier.
pub fn ladder_is_consistent(tiers: &[TierRule]) -> bool {
    let mut ordered: Vec<&TierRule> = tiers.iter().collect();
    ordered.sort_by_key(|t| t.rank);
    ordered
        .first()
        .is_some_and(|lowest| lowest.growth_threshold == 0)
        && ordered
            .windows(2)
            .all(|w| w[0].rank < w[1].rank && w[0].growth_threshold < w[1].growth_threshold)
}

/// How long a tier holds once reached or renewed.
pub fn validity_end(from: DateTime<Utc>) -> DateTime<Utc> {
    from.checked_add_months(Months::new(12))
        .unwrap_or(from + Duration::days(365))
}

/// The last days of validity, when purchase points are multiplied to help keep the tier.
pub const SPRINT_DAYS: i64 = 30;

/// The highest tier whose threshold the growth reaches (tiers sorted or not).
pub fn tier_for(growth: i64, tiers: &[TierRule]) -> Option<&TierRule> {
    tiers
        .iter()
        .filter(|t| t.growth_threshold <= growth)
        .max_by_key(|t| (t.rank, t.growth_threshold))
}

/// Whether more growth moves the member up at once: only ever up.
pub fn upgrade(current_rank: i32, growth: i64, tiers: &[TierRule]) -> Option<&TierRule> {
    tier_for(growth, tiers).filter(|t| t.rank > current_rank)
}

/// At the end of validity: the tier the last 12 months' growth earns, but at most one step
/// below the current one. `None` keeps (and renews) the current tier.
pub fn reevaluate(current_rank: i32, growth_12m: i64, tiers: &[TierRule]) -> Option<&TierRule> {
    let earned = tier_for(growth_12m, tiers)?;
    if earned.rank >= current_rank {
        return None;
    }
    tiers
        .iter()
        .filter(|t| t.rank < current_rank)
        .max_by_key(|t| t.rank)
        .filter(|one_down| one_down.rank >= earned.rank)
}

/// In the sprint window: the last `SPRINT_DAYS` before a tier's validity ends.
pub fn in_sprint(valid_until: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    valid_until.is_some_and(|end| now < end && now >= end - Duration::days(SPRINT_DAYS))
}

/// The next tier up and the growth still needed for it, with a 0..1 progress ratio.
pub fn next_tier(
    current_rank: i32,
    growth: i64,
    tiers: &[TierRule],
) -> Option<(&TierRule, i64, f64)> {
    let current_threshold = tiers
        .iter()
        .find(|t| t.rank == current_rank)
        .map_or(0, |t| t.growth_threshold);
    let next = tiers
        .iter()
        .filter(|t| t.rank > current_rank)
        .min_by_key(|t| t.rank)?;
    let needed = (next.growth_threshold - growth).max(0);
    let span = (next.growth_threshold - current_threshold).max(1);
    let ratio = ((growth - current_threshold) as f64 / span as f64).clamp(0.0, 1.0);
    Some((next, needed, ratio))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn tiers() -> Vec<TierRule> {
        [
            ("normal", 0, 0, "1.0", 20),
            ("silver", 1, 1000, "1.2", 100),
            ("gold", 2, 5000, "1.5", 200),
            ("diamond", 3, 20000, "2.0", 300),
        ]
        .into_iter()
        .map(|(code, rank, threshold, mult, gift)| TierRule {
            code: code.into(),
            rank,
            growth_threshold: threshold,
            points_multiplier: d(mult),
            birthday_gift: gift,
        })
        .collect()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_tier_is_the_highest_threshold_reached_exactly_at_the_threshold_too() {
        let t = tiers();
        assert_eq!(tier_for(0, &t).unwrap().code, "normal");
        assert_eq!(tier_for(999, &t).unwrap().code, "normal");
        assert_eq!(tier_for(1000, &t).unwrap().code, "silver");
        assert_eq!(tier_for(20000, &t).unwrap().code, "diamond");
        assert_eq!(upgrade(0, 1000, &t).unwrap().code, "silver");
        assert!(
            upgrade(2, 1000, &t).is_none(),
            "more growth never moves anyone down"
        );
    }

    #[test]
    fn a_ladder_starts_at_zero_and_rises_with_rank() {
        let mut t = tiers();
        assert!(ladder_is_consistent(&t));
        t[2].growth_threshold = 900;
        assert!(!ladder_is_consistent(&t), "gold below silver");
        let mut t = tiers();
        t[0].growth_threshold = 10;
        assert!(!ladder_is_consistent(&t), "the lowest tier must start at 0");
        let mut t = tiers();
        t[3].rank = 2;
        assert!(!ladder_is_consistent(&t), "two tiers share a rank");
        assert!(!ladder_is_consistent(&[]));
    }

    #[test]
    fn re_evaluation_drops_at_most_one_tier_or_renews() {
        let t = tiers();
        assert_eq!(
            reevaluate(3, 0, &t).unwrap().code,
            "gold",
            "diamond with no growth drops one step"
        );
        assert_eq!(reevaluate(2, 1200, &t).unwrap().code, "silver");
        assert!(
            reevaluate(2, 5000, &t).is_none(),
            "growth at the threshold keeps the tier"
        );
        assert!(
            reevaluate(1, 30000, &t).is_none(),
            "re-evaluation never moves up"
        );
        assert!(reevaluate(0, 0, &t).is_none(), "the base tier cannot drop");
    }

    #[test]
    fn the_sprint_is_the_last_thirty_days_of_validity() {
        let end = Some(at("2027-03-01T00:00:00Z"));
        assert!(!in_sprint(end, at("2027-01-29T23:59:59Z")));
        assert!(in_sprint(end, at("2027-01-30T00:00:00Z")));
        assert!(in_sprint(end, at("2027-02-28T23:59:59Z")));
        assert!(!in_sprint(end, at("2027-03-01T00:00:00Z")));
        assert!(!in_sprint(None, at("2027-02-15T00:00:00Z")));
    }

    #[test]
    fn next_tier_tells_what_is_still_needed() {
        let t = tiers();
        let (next, needed, ratio) = next_tier(0, 600, &t).unwrap();
        assert_eq!((next.code.as_str(), needed), ("silver", 400));
        assert!((ratio - 0.6).abs() < 1e-9);
        let (next, needed, ratio) = next_tier(1, 3000, &t).unwrap();
        assert_eq!((next.code.as_str(), needed), ("gold", 2000));
        assert!((ratio - 0.5).abs() < 1e-9);
        assert!(next_tier(3, 99999, &t).is_none(), "nothing above the top");
    }

    #[test]
    fn validity_runs_twelve_months_even_from_a_leap_day() {
        assert_eq!(
            validity_end(at("2028-02-29T10:00:00Z")),
            at("2029-02-28T10:00:00Z")
        );
        assert_eq!(
            validity_end(at("2026-11-24T10:00:00Z")),
            at("2027-11-24T10:00:00Z")
        );
    }

    proptest! {
        #[test]
        fn re_evaluation_never_drops_more_than_one_rank(rank in 0i32..4, growth in 0i64..40_000) {
            let t = tiers();
            if let Some(to) = reevaluate(rank, growth, &t) {
                prop_assert_eq!(to.rank, rank - 1);
            }
        }
    }
}
