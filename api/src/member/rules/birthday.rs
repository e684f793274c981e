//! Birthday rules: the birthday month (a 29 February birthday has February) and the gift that
//! grows with the year's purchases.

use chrono::{Datelike, NaiveDate};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
