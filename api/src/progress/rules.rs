//! Pure rules of progress: which metrics an event moves, and the period keys counters live under.

use chrono::{Datelike, NaiveDate};

/// Something a member did that tasks and achievements may count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    CheckedIn {
        streak: i64,
    },
    PurchasePaid {
        yuan: i64,
    },
    Redeemed,
    Drew {
        count: i64,
    },
    InviteJoined,
    TaskClaimed,
    /// `interaction`: from check-ins and tasks (they also grow the member's growth value).
    PointsEarned {
        amount: i64,
        interaction: bool,
    },
    Donated {
        points: i64,
    },
    /// A client-reported kind (`browse_item`, `share`, ...), already checked against the allow-list.
    Reported {
        kind: String,
    },
    /// The member is given something another module owns (a blind-box prize); that module's
    /// handler gives it, in the same transaction. Counts for no metric.
    Granted(Grant),
}

/// Something one module gives a member and another module owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An achievement's title (achievements).
    Title { code: String },
    /// A HIDDEN task unlocked (tasks).
    HiddenTask { code: String },
    /// A mall item as a paid order at 0 points; `source_key` names what gave it (mall).
    MallItem { item_id: i64, source_key: String },
    /// A coupon worth `value_fen`, valid `valid_days` (mall).
    Coupon {
        name: String,
        value_fen: i64,
        valid_days: i64,
        source: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update {
    /// Counters: add this much.
    Add(i64),
    /// Records: keep the highest value seen (e.g. the longest streak).
    Max(i64),
}

impl Update {
    /// The value of a metric this update creates.
    pub fn initial(self) -> i64 {
        match self {
            Update::Add(n) | Update::Max(n) => n,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    All,
    Day,
    Week,
    Month,
}

/// `all`, `d:2026-11-24`, `w:2026-W48` (ISO weeks, starting Monday), `m:2026-11`.
pub fn period_key(period: Period, day: NaiveDate) -> String {
    match period {
        Period::All => "all".to_string(),
        Period::Day => format!("d:{}", day.format("%Y-%m-%d")),
        Period::Week => {
            let week = day.iso_week();
            format!("w:{}-W{:02}", week.year(), week.week())
        }
        Period::Month => format!("m:{}", day.format("%Y-%m")),
    }
}

/// The metrics an event moves, how, and in which periods.
pub fn changes_for(event: &Event) -> Vec<(String, Update, &'static [Period])> {
    use Period::*;
    const ALL_DWM: &[Period] = &[All, Day, Week, Month];
    let m = |name: &str| name.to_string();
    match event {
        Event::CheckedIn { streak } => vec![
            (m("checkin.total"), Update::Add(1), &[All, Week, Month]),
            (m("checkin.streak"), Update::Max(*streak), &[All]),
        ],
        Event::PurchasePaid { yuan } => vec![
            (m("purchase.count"), Update::Add(1), ALL_DWM),
            (m("purchase.amount"), Update::Add(*yuan), &[All, Month]),
        ],
        Event::Redeemed => vec![(m("mall.redemptions"), Update::Add(1), ALL_DWM)],
        Event::Drew { count } => vec![(m("blindbox.draws"), Update::Add(*count), ALL_DWM)],
        Event::InviteJoined => vec![(m("invite.count"), Update::Add(1), &[All, Week, Month])],
        Event::TaskClaimed => vec![(m("tasks.claimed"), Update::Add(1), ALL_DWM)],
        Event::PointsEarned { amount, .. } => {
            vec![(m("points.earned"), Update::Add(*amount), &[All, Month])]
        }
        Event::Donated { points } => vec![(m("donation.points"), Update::Add(*points), &[All])],
        Event::Reported { kind } => vec![(format!("event.{kind}"), Update::Add(1), ALL_DWM)],
        Event::Granted(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_start_on_monday_and_follow_iso_years() {
        assert_eq!(period_key(Period::Week, day("2026-11-23")), "w:2026-W48"); // Monday
        assert_eq!(period_key(Period::Week, day("2026-11-29")), "w:2026-W48"); // Sunday
        assert_eq!(period_key(Period::Week, day("2026-11-30")), "w:2026-W49");
        // 2027-01-01 is a Friday in ISO week 53 of 2026.
        assert_eq!(period_key(Period::Week, day("2027-01-01")), "w:2026-W53");
    }

    #[test]
    fn day_month_and_all_keys_read_as_dates() {
        assert_eq!(period_key(Period::Day, day("2026-03-01")), "d:2026-03-01");
        assert_eq!(period_key(Period::Month, day("2026-03-01")), "m:2026-03");
        assert_eq!(period_key(Period::All, day("2026-03-01")), "all");
    }

    #[test]
    fn a_check_in_counts_once_and_records_the_streak() {
        let changes = changes_for(&Event::CheckedIn { streak: 7 });
        assert_eq!(changes[0].0, "checkin.total");
        assert_eq!(changes[0].1, Update::Add(1));
        assert_eq!(
            changes[1],
            (
                "checkin.streak".to_string(),
                Update::Max(7),
                &[Period::All][..]
            )
        );
    }

    #[test]
    fn reported_kinds_get_their_own_metric() {
        let changes = changes_for(&Event::Reported {
            kind: "browse_item".into(),
        });
        assert_eq!(changes[0].0, "event.browse_item");
    }
}
