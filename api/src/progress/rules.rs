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

/// One counter an event moves: its (metric, period) key and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedUpdate {
    pub metric: String,
    pub period: String,
    pub update: Update,
}

/// Every counter the events move on `day`, one entry per key and kind of update: amounts added
/// to the same key are summed, records on the same key keep the highest, so one statement can
/// write them all (a database refuses to update one row twice in one statement).
pub fn merged_updates(events: &[Event], day: NaiveDate) -> Vec<KeyedUpdate> {
    let mut merged: Vec<KeyedUpdate> = Vec::new();
    for event in events {
        for (metric, update, periods) in changes_for(event) {
            for &period in periods {
                let period = period_key(period, day);
                let same = merged.iter_mut().find(|u| {
                    u.metric == metric
                        && u.period == period
                        && matches!(
                            (u.update, update),
                            (Update::Add(_), Update::Add(_)) | (Update::Max(_), Update::Max(_))
                        )
                });
                match (same, update) {
                    (Some(u), Update::Add(n)) => u.update = Update::Add(u.update.initial() + n),
                    (Some(u), Update::Max(n)) => {
                        u.update = Update::Max(u.update.initial().max(n));
                    }
                    (None, update) => merged.push(KeyedUpdate {
                        metric: metric.clone(),
                        period,
                        update,
                    }),
                }
            }
        }
    }
    merged
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

    #[test]
    fn a_check_in_and_its_points_merge_into_one_list_of_counters() {
        let day = day("2026-11-24");
        let merged = merged_updates(
            &[
                Event::CheckedIn { streak: 3 },
                Event::PointsEarned {
                    amount: 15,
                    interaction: true,
                },
            ],
            day,
        );
        let keys: Vec<(&str, &str, Update)> = merged
            .iter()
            .map(|u| (u.metric.as_str(), u.period.as_str(), u.update))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("checkin.total", "all", Update::Add(1)),
                ("checkin.total", "w:2026-W48", Update::Add(1)),
                ("checkin.total", "m:2026-11", Update::Add(1)),
                ("checkin.streak", "all", Update::Max(3)),
                ("points.earned", "all", Update::Add(15)),
                ("points.earned", "m:2026-11", Update::Add(15)),
            ]
        );
    }

    #[test]
    fn the_same_counter_moved_twice_is_summed_and_a_record_keeps_the_highest() {
        let day = day("2026-11-24");
        let earned = |amount| Event::PointsEarned {
            amount,
            interaction: false,
        };
        let merged = merged_updates(
            &[
                earned(10),
                earned(5),
                Event::CheckedIn { streak: 4 },
                Event::CheckedIn { streak: 2 },
            ],
            day,
        );
        let find = |metric: &str, period: &str| {
            merged
                .iter()
                .find(|u| u.metric == metric && u.period == period)
                .map(|u| u.update)
        };
        assert_eq!(find("points.earned", "all"), Some(Update::Add(15)));
        assert_eq!(find("checkin.total", "all"), Some(Update::Add(2)));
        assert_eq!(find("checkin.streak", "all"), Some(Update::Max(4)));
        assert_eq!(merged.len(), 2 + 3 + 1);
    }
}
