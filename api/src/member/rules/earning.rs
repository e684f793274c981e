//! Earning rules: purchase points (category, tier and campaign multipliers, capped by the
//! order's value), growth from spending, and what a purchase must be to be recorded. Money is
//! `Decimal` yuan; points and growth are whole numbers, rounded down.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
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

    proptest! {
        #[test]
        fn purchase_points_never_exceed_the_cap_nor_go_negative(
            fen in 1i64..100_000_000, birthday: bool, sprint: bool, double_day: bool, tier in 0usize..4
        ) {
            let amount = Decimal::new(fen, 2);
            let multipliers = ["1.0", "1.2", "1.5", "2.0"];
            let boosts = Boosts { birthday_month: birthday, sprint, double_day };
            let p = purchase_points(&[line("milk_powder", &amount.to_string())], &earning(), d(multipliers[tier]), boosts, d("2"), d("0.1")).unwrap();
            prop_assert!(p >= 0);
            prop_assert!(Decimal::from(p) <= (amount * Decimal::from(10) * d("0.5")).floor());
        }
    }
}
