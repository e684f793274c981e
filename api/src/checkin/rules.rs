//! Pure rules of the daily check-in: streaks over business days, bonuses, and make-ups.

use chrono::{Datelike, Duration, NaiveDate};
use serde::{Deserialize, Serialize};

/// The shop's check-in rules (admin `updateCheckInRules`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckInRules {
    pub base_points: i64,
    /// (streak length, extra points), paid on the day the streak reaches that length.
    pub streak_bonuses: Vec<(i64, i64)>,
    pub make_up_cost: i64,
    pub make_ups_per_month: i64,
}

impl Default for CheckInRules {
    /// 5 points a day; +20 at 7 days, +100 at 30; 3 make-ups a month at 20 points.
    fn default() -> Self {
        CheckInRules {
            base_points: 5,
            streak_bonuses: vec![(7, 20), (30, 100)],
            make_up_cost: 20,
            make_ups_per_month: 3,
        }
    }
}

impl CheckInRules {
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(1..=1000).contains(&self.base_points) {
            return Err(("basePoints", "basePoints must be 1 to 1000"));
        }
        let mut days: Vec<i64> = self.streak_bonuses.iter().map(|(d, _)| *d).collect();
        days.sort_unstable();
        days.dedup();
        if days.len() != self.streak_bonuses.len()
            || self
                .streak_bonuses
                .iter()
                .any(|(d, p)| !(2..=366).contains(d) || !(1..=10_000).contains(p))
        {
            return Err((
                "streakBonuses",
                "each bonus needs its own length of 2 to 366 days and 1 to 10,000 points",
            ));
        }
        if !(0..=10_000).contains(&self.make_up_cost) {
            return Err(("makeUpCost", "makeUpCost must be 0 to 10,000"));
        }
        if !(0..=31).contains(&self.make_ups_per_month) {
            return Err(("makeUpsPerMonth", "makeUpsPerMonth must be 0 to 31"));
        }
        Ok(())
    }

    /// Extra points for a streak of exactly this length, 0 if none.
    pub fn bonus_for(&self, streak: i64) -> i64 {
        self.streak_bonuses
            .iter()
            .filter(|(days, _)| *days == streak)
            .map(|(_, points)| points)
            .sum()
    }
}

/// Consecutive checked days ending on `day` (0 if `day` itself is not checked).
/// `checked` may be in any order.
pub fn streak_ending(checked: &[NaiveDate], day: NaiveDate) -> i64 {
    let mut days: Vec<NaiveDate> = checked.to_vec();
    days.sort_unstable();
    days.dedup();
    let mut streak = 0;
    let mut expected = day;
    for d in days.iter().rev().skip_while(|d| **d > day) {
        if *d != expected {
            break;
        }
        streak += 1;
        expected -= Duration::days(1);
    }
    streak
}

/// The streak as the member sees it today: ending today, or ending yesterday while today is
/// still open; 0 once a day was missed and not made up.
pub fn current_streak(checked: &[NaiveDate], today: NaiveDate) -> i64 {
    let through_today = streak_ending(checked, today);
    if through_today > 0 {
        through_today
    } else {
        streak_ending(checked, today - Duration::days(1))
    }
}

/// Why a day cannot be made up, or Ok: only a day of the current month before today.
pub fn check_make_up(day: NaiveDate, today: NaiveDate) -> Result<(), &'static str> {
    if day >= today {
        return Err("only a day before today can be made up");
    }
    if (day.year(), day.month()) != (today.year(), today.month()) {
        return Err("only a day of the current month can be made up");
    }
    Ok(())
}

/// `YYYY-MM` to the month's first day.
pub fn parse_month(month: &str) -> Option<NaiveDate> {
    let (y, m) = month.trim().split_once('-')?;
    if m.len() != 2 {
        return None;
    }
    NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)
}

/// The first day of the month after `first_of_month`.
pub fn next_month(first_of_month: NaiveDate) -> NaiveDate {
    first_of_month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first_of_month)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn a_streak_counts_consecutive_days_and_a_missed_day_resets_it() {
        let days = [d("2026-03-01"), d("2026-03-02"), d("2026-03-04")];
        assert_eq!(streak_ending(&days, d("2026-03-02")), 2);
        assert_eq!(streak_ending(&days, d("2026-03-04")), 1);
        assert_eq!(streak_ending(&days, d("2026-03-03")), 0);
        assert_eq!(
            current_streak(&days, d("2026-03-05")),
            1,
            "today still open"
        );
        assert_eq!(
            current_streak(&days, d("2026-03-06")),
            0,
            "yesterday missed"
        );
    }

    #[test]
    fn streaks_run_across_month_and_year_ends() {
        let days = [
            d("2026-12-30"),
            d("2026-12-31"),
            d("2027-01-01"),
            d("2027-01-02"),
        ];
        assert_eq!(streak_ending(&days, d("2027-01-02")), 4);
        let leap = [d("2028-02-28"), d("2028-02-29"), d("2028-03-01")];
        assert_eq!(streak_ending(&leap, d("2028-03-01")), 3);
    }

    #[test]
    fn a_make_up_fills_the_gap_and_restores_the_streak() {
        let mut days = vec![d("2026-03-01"), d("2026-03-02"), d("2026-03-04")];
        assert_eq!(current_streak(&days, d("2026-03-04")), 1);
        days.push(d("2026-03-03"));
        assert_eq!(current_streak(&days, d("2026-03-04")), 4);
    }

    #[test]
    fn only_past_days_of_this_month_can_be_made_up() {
        let today = d("2026-03-10");
        assert!(check_make_up(d("2026-03-01"), today).is_ok());
        assert!(check_make_up(d("2026-03-09"), today).is_ok());
        assert!(check_make_up(today, today).is_err());
        assert!(check_make_up(d("2026-03-11"), today).is_err());
        assert!(check_make_up(d("2026-02-28"), today).is_err());
        assert!(check_make_up(d("2025-03-05"), today).is_err());
    }

    #[test]
    fn bonuses_are_paid_on_the_day_the_streak_reaches_them() {
        let rules = CheckInRules::default();
        assert_eq!(rules.bonus_for(6), 0);
        assert_eq!(rules.bonus_for(7), 20);
        assert_eq!(rules.bonus_for(8), 0);
        assert_eq!(rules.bonus_for(30), 100);
    }

    #[test]
    fn rules_are_checked_before_they_are_saved() {
        assert!(CheckInRules::default().validate().is_ok());
        let bad = |f: fn(&mut CheckInRules)| {
            let mut r = CheckInRules::default();
            f(&mut r);
            r.validate().unwrap_err().0
        };
        assert_eq!(bad(|r| r.base_points = 0), "basePoints");
        assert_eq!(
            bad(|r| r.streak_bonuses = vec![(7, 20), (7, 30)]),
            "streakBonuses"
        );
        assert_eq!(bad(|r| r.streak_bonuses = vec![(1, 20)]), "streakBonuses");
        assert_eq!(bad(|r| r.make_up_cost = -1), "makeUpCost");
        assert_eq!(bad(|r| r.make_ups_per_month = 40), "makeUpsPerMonth");
    }

    #[test]
    fn months_parse_as_yyyy_mm() {
        assert_eq!(parse_month("2026-03"), Some(d("2026-03-01")));
        assert_eq!(next_month(d("2026-12-01")), d("2027-01-01"));
        assert_eq!(parse_month("2026-3"), None);
        assert_eq!(parse_month("2026-13"), None);
        assert_eq!(parse_month("march"), None);
    }

    proptest! {
        /// However the days are ordered, the streak is the run of consecutive days up to `day`.
        #[test]
        fn the_streak_is_the_run_of_days_before_and_including_the_day(
            offsets in prop::collection::btree_set(0i64..60, 0..40),
            probe in 0i64..60,
        ) {
            let start = d("2026-01-01");
            let days: Vec<_> = offsets.iter().rev().map(|o| start + Duration::days(*o)).collect();
            let day = start + Duration::days(probe);
            let expected = (0..=probe).take_while(|k| offsets.contains(&(probe - k))).count() as i64;
            prop_assert_eq!(streak_ending(&days, day), expected);
        }
    }
}
