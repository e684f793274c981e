//! Where every module gets the time. Nothing calls `Utc::now()` directly, so tests can travel
//! in time: in `APP_ENV=test` the `X-Test-Now` header sets the instant a request runs at.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

pub const TEST_NOW_HEADER: &str = "x-test-now";

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// True only in `APP_ENV=test`; everywhere else the header is ignored.
    honours_test_header: bool,
}

impl Clock {
    pub fn new(honours_test_header: bool) -> Self {
        Clock {
            honours_test_header,
        }
    }

    /// The system time. Request code uses the request's `now` instead (see `context`).
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    /// The instant one request runs at: the `X-Test-Now` header in test mode, else the system time.
    pub fn request_now(&self, test_header: Option<&str>) -> Result<DateTime<Utc>, String> {
        match test_header {
            Some(raw) if self.honours_test_header => DateTime::parse_from_rfc3339(raw.trim())
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| format!("X-Test-Now {raw:?} is not an RFC 3339 time")),
            _ => Ok(self.now()),
        }
    }
}

/// The business day an instant falls on, in the shop's time zone (`APP_TIMEZONE`).
pub fn business_date(now: DateTime<Utc>, tz: FixedOffset) -> NaiveDate {
    now.with_timezone(&tz).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_header_sets_now_only_when_honoured() {
        let at = "2030-01-02T03:04:05+08:00";
        let travelled = Clock::new(true).request_now(Some(at)).unwrap();
        assert_eq!(travelled.to_rfc3339(), "2030-01-01T19:04:05+00:00");
        let ignored = Clock::new(false).request_now(Some(at)).unwrap();
        assert!(ignored.timestamp() < travelled.timestamp());
        assert!(Clock::new(true).request_now(Some("yesterday")).is_err());
    }

    #[test]
    fn business_days_follow_the_shop_time_zone() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 15:50Z and 23:50+08:00 are one day; 23:30 and 00:10 at +08:00 are two.
        assert_eq!(
            business_date(at("2026-03-01T15:50:00Z"), tz),
            business_date(at("2026-03-01T23:50:00+08:00"), tz)
        );
        assert_ne!(
            business_date(at("2026-03-01T23:30:00+08:00"), tz),
            business_date(at("2026-03-02T00:10:00+08:00"), tz)
        );
    }
}
