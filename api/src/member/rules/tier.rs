//! Pure rules of the member center: tiers, growth, purchase points, birthday gifts and RFM.
//! Money is `Decimal` yuan; points and growth are whole numbers, rounded down.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

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

/// One line of a purchase, in yuan.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub category: String,
    pub amount: Decimal,
}

/// The shop's earning rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Earning {
    pub points_per_yuan: Decimal,
    pub category_multipliers: Vec<(String, Decimal)>,
    pub double_points_days: Vec<NaiveDate>,
    /// Most points one order can earn, as a share of its value in points.
    pub max_points_ratio: Decimal,
}

/// Why an order earns more than the base rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Boosts {
    pub birthday_month: bool,
    pub sprint: bool,
    pub double_day: bool,
}

pub const BIRTHDAY_MULTIPLIER: i64 = 2;
pub const DOUBLE_DAY_MULTIPLIER: i64 = 2;

/// Purchase points: floor(sum of line x category multiplier x points per yuan), times the tier
/// multiplier and each campaign multiplier, capped at `max_points_ratio` of the order's value in
/// points (`amount / point_value`), rounded down at the end.
pub fn purchase_points(
    lines: &[Line],
    rules: &Earning,
    tier_multiplier: Decimal,
    boosts: Boosts,
    sprint_multiplier: Decimal,
    point_value_yuan: Decimal,
) -> Option<i64> {
    // Amounts and multipliers are bounded where they come in; checked arithmetic turns anything
    // that still overflows into a refusal instead of a panic.
    let multiplier_of = |category: &str| {
        rules
            .category_multipliers
            .iter()
            .find(|(c, _)| c == category)
            .map_or(Decimal::ONE, |(_, m)| *m)
    };
    let mut base = Decimal::ZERO;
    for l in lines {
        let line = l
            .amount
            .checked_mul(multiplier_of(&l.category))?
            .checked_mul(rules.points_per_yuan)?;
        base = base.checked_add(line)?;
    }
    let mut points = base.floor().checked_mul(tier_multiplier)?;
    if boosts.birthday_month {
        points = points.checked_mul(Decimal::from(BIRTHDAY_MULTIPLIER))?;
    }
    if boosts.sprint {
        points = points.checked_mul(sprint_multiplier)?;
    }
    if boosts.double_day {
        points = points.checked_mul(Decimal::from(DOUBLE_DAY_MULTIPLIER))?;
    }
    let amount = lines
        .iter()
        .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.amount))?;
    let cap = if point_value_yuan > Decimal::ZERO {
        amount
            .checked_div(point_value_yuan)?
            .checked_mul(rules.max_points_ratio)?
            .floor()
    } else {
        points
    };
    points.min(cap).floor().max(Decimal::ZERO).to_i64()
}

/// Growth from spending: yuan x weight, rounded down.
pub fn growth_from_spend(amount: Decimal, weight: Decimal) -> i64 {
    (amount * weight).floor().to_i64().unwrap_or(0).max(0)
}

/// Whether `day` falls in the member's birthday month. A 29 February birthday has February.
pub fn is_birthday_month(birthday: Option<NaiveDate>, day: NaiveDate) -> bool {
    birthday.is_some_and(|b| b.month() == day.month())
}

/// The birthday gift: the tier's base gift, rising by half of it for each purchase in the last
/// 12 months, up to three times the base (Silver 100 rises to 300 with 4 purchases).
pub fn birthday_gift(tier_base_gift: i64, purchases_12m: i64) -> i64 {
    let steps = purchases_12m.clamp(0, 4);
    tier_base_gift + tier_base_gift * steps / 2
}

/// Checks a purchase before anything is written.
pub fn validate_purchase(
    amount: Decimal,
    lines: &[Line],
    paid_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(), (&'static str, String)> {
    if amount <= Decimal::ZERO || amount > Decimal::from(1_000_000) {
        return Err((
            "amount",
            "amount must be more than 0 and at most 1,000,000 yuan".into(),
        ));
    }
    if amount.scale() > 2 && amount.normalize().scale() > 2 {
        return Err((
            "amount",
            "amount is in yuan with at most two decimal places".into(),
        ));
    }
    if lines.iter().any(|l| {
        l.amount <= Decimal::ZERO
            || l.category.trim().is_empty()
            || crate::input::yuan_to_fen("lines", l.amount).is_err()
    }) {
        return Err((
            "lines",
            "every line needs a category and an amount above 0 and at most 1,000,000 yuan, \
             with at most two decimal places"
                .into(),
        ));
    }
    let total = lines
        .iter()
        .try_fold(Decimal::ZERO, |sum, l| sum.checked_add(l.amount));
    if total != Some(amount) {
        return Err(("lines", "the lines must add up to the amount".into()));
    }
    // Clocks of two systems differ a little; an order from the future does not happen.
    if paid_at > now + Duration::minutes(5) {
        return Err(("paidAt", "paidAt is in the future".into()));
    }
    Ok(())
}

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

    fn earning() -> Earning {
        Earning {
            points_per_yuan: Decimal::ONE,
            category_multipliers: vec![("milk_powder".into(), d("3")), ("supplies".into(), d("1"))],
            double_points_days: vec![],
            max_points_ratio: d("0.5"),
        }
    }

    fn line(category: &str, amount: &str) -> Line {
        Line {
            category: category.into(),
            amount: d(amount),
        }
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

    #[test]
    fn purchase_points_follow_category_tier_and_campaign_multipliers() {
        let tenth = d("0.1");
        let plain = |lines: &[Line], tier: &str, boosts| {
            purchase_points(lines, &earning(), d(tier), boosts, d("2"), tenth).unwrap()
        };
        assert_eq!(
            plain(&[line("default", "100.00")], "1.0", Boosts::default()),
            100
        );
        assert_eq!(
            plain(
                &[line("milk_powder", "100"), line("supplies", "50")],
                "1.0",
                Boosts::default()
            ),
            350
        );
        assert_eq!(
            plain(&[line("default", "100")], "1.2", Boosts::default()),
            120
        );
        let birthday = Boosts {
            birthday_month: true,
            ..Default::default()
        };
        assert_eq!(plain(&[line("default", "100")], "1.0", birthday), 200);
        let all = Boosts {
            birthday_month: true,
            sprint: true,
            double_day: true,
        };
        // 100 x 8 = 800, capped at half of the order's 1,000 points of value.
        assert_eq!(plain(&[line("default", "100")], "1.0", all), 500);
    }

    #[test]
    fn tiny_orders_earn_nothing_rather_than_a_fraction() {
        let p = purchase_points(
            &[line("default", "0.01")],
            &earning(),
            d("2.0"),
            Boosts::default(),
            d("2"),
            d("0.1"),
        )
        .unwrap();
        assert_eq!(p, 0);
        assert_eq!(growth_from_spend(d("0.01"), d("0.6")), 0);
        assert_eq!(growth_from_spend(d("100.00"), d("0.6")), 60);
        assert_eq!(growth_from_spend(d("1.99"), d("0.6")), 1);
    }

    #[test]
    fn leap_day_birthdays_fall_in_february() {
        let leap = NaiveDate::from_ymd_opt(2000, 2, 29);
        assert!(is_birthday_month(
            leap,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        ));
        assert!(!is_birthday_month(
            leap,
            NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()
        ));
        assert!(!is_birthday_month(
            None,
            NaiveDate::from_ymd_opt(2027, 2, 28).unwrap()
        ));
    }

    #[test]
    fn the_birthday_gift_grows_with_purchases_up_to_three_times() {
        assert_eq!(birthday_gift(100, 0), 100);
        assert_eq!(birthday_gift(100, 2), 200);
        assert_eq!(birthday_gift(100, 4), 300);
        assert_eq!(birthday_gift(100, 40), 300);
    }

    #[test]
    fn purchases_that_do_not_add_up_or_come_from_the_future_are_refused() {
        let now = at("2026-11-24T00:00:00Z");
        assert!(
            validate_purchase(
                d("100.00"),
                &[line("a", "60"), line("b", "40.00")],
                now,
                now
            )
            .is_ok()
        );
        assert_eq!(
            validate_purchase(d("100"), &[line("a", "60")], now, now)
                .unwrap_err()
                .0,
            "lines"
        );
        assert_eq!(
            validate_purchase(d("0"), &[line("a", "0")], now, now)
                .unwrap_err()
                .0,
            "amount"
        );
        assert_eq!(
            validate_purchase(d("-5"), &[line("a", "-5")], now, now)
                .unwrap_err()
                .0,
            "amount"
        );
        assert_eq!(
            validate_purchase(d("10000000"), &[line("a", "10000000")], now, now)
                .unwrap_err()
                .0,
            "amount"
        );
        assert_eq!(
            validate_purchase(d("1.005"), &[line("a", "1.005")], now, now)
                .unwrap_err()
                .0,
            "amount"
        );
        assert_eq!(
            validate_purchase(d("1"), &[line("a", "1")], now + Duration::hours(1), now)
                .unwrap_err()
                .0,
            "paidAt"
        );
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

    proptest! {
        #[test]
        fn purchase_points_never_exceed_the_cap_nor_go_negative(
            fen in 1i64..100_000_000, birthday: bool, sprint: bool, double_day: bool, tier in 0usize..4
        ) {
            let amount = Decimal::new(fen, 2);
            let t = tiers();
            let boosts = Boosts { birthday_month: birthday, sprint, double_day };
            let p = purchase_points(&[line("milk_powder", &amount.to_string())], &earning(), t[tier].points_multiplier, boosts, d("2"), d("0.1")).unwrap();
            prop_assert!(p >= 0);
            prop_assert!(Decimal::from(p) <= (amount * Decimal::from(10) * d("0.5")).floor());
        }

        #[test]
        fn re_evaluation_never_drops_more_than_one_rank(rank in 0i32..4, growth in 0i64..40_000) {
            let t = tiers();
            if let Some(to) = reevaluate(rank, growth, &t) {
                prop_assert_eq!(to.rank, rank - 1);
            }
        }
    }
}
