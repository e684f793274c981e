//! Pure rules of tasks: kinds and their periods, which events advance which tasks, who sees a
//! task, and the allow-list of client-reported events.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveTime, Utc};

use crate::progress::Event;
use crate::progress::rules::{Period, period_key};

pub use entity::task::TaskKind;

/// The progress period a task counts in on `day`: the day, the ISO week, or for ever.
pub fn period_of(kind: TaskKind, day: NaiveDate) -> String {
    let period = match kind {
        TaskKind::Daily => Period::Day,
        TaskKind::Weekly => Period::Week,
        _ => Period::All,
    };
    period_key(period, day)
}

/// When the current period ends (the next midnight, or next Monday's), for DAILY and WEEKLY.
pub fn period_end(kind: TaskKind, day: NaiveDate, tz: FixedOffset) -> Option<DateTime<Utc>> {
    let next = match kind {
        TaskKind::Daily => day + Duration::days(1),
        TaskKind::Weekly => {
            day + Duration::days(7 - i64::from(day.weekday().num_days_from_monday()))
        }
        _ => return None,
    };
    next.and_time(NaiveTime::MIN)
        .and_local_timezone(tz)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

/// The task events an event advances, and by how much.
pub fn task_events(event: &Event) -> Vec<(String, i64)> {
    match event {
        Event::CheckedIn { .. } => vec![("checkin".into(), 1)],
        Event::PurchasePaid { yuan } => vec![("purchase".into(), 1), ("spend".into(), *yuan)],
        Event::Redeemed => vec![("redeem".into(), 1)],
        Event::Drew { count } => vec![("draw".into(), *count)],
        Event::InviteJoined => vec![("invite".into(), 1)],
        Event::Donated { points } => vec![("donate".into(), *points)],
        Event::Reported { kind } => vec![(kind.clone(), 1)],
        Event::TaskClaimed | Event::PointsEarned { .. } | Event::Granted(_) => Vec::new(),
    }
}

/// What decides whether a member sees a task.
pub struct Audience<'a> {
    pub tier_rank: i32,
    pub segment: Option<&'a str>,
    pub hidden_unlocked: bool,
}

pub struct Visibility<'a> {
    pub kind: TaskKind,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub min_tier_rank: Option<i32>,
    pub audience_segment: Option<&'a str>,
}

pub fn visible(task: &Visibility<'_>, who: &Audience<'_>, now: DateTime<Utc>) -> bool {
    task.active
        && task.starts_at.is_none_or(|s| s <= now)
        && task.ends_at.is_none_or(|e| now < e)
        && task.min_tier_rank.is_none_or(|r| who.tier_rank >= r)
        && task.audience_segment.is_none_or(|s| who.segment == Some(s))
        && (task.kind != TaskKind::Hidden || who.hidden_unlocked)
}

/// A client-reported event kind the shop accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reportable {
    pub kind: String,
    /// At most this many count per member per business day.
    pub daily_cap: i64,
    /// Browse-type: the same target counts once per day.
    pub distinct_targets: bool,
}

/// `browse_item:50:distinct,share:20,review:5` into the allow-list.
pub fn parse_reportables(spec: &str) -> Result<Vec<Reportable>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            let mut parts = item.split(':');
            let kind = parts.next().unwrap_or_default().trim();
            let cap = parts.next().and_then(|c| c.trim().parse::<i64>().ok());
            let distinct = match parts.next().map(str::trim) {
                None => false,
                Some("distinct") => true,
                Some(other) => return Err(format!("{item:?}: unknown flag {other:?}")),
            };
            match cap {
                Some(cap) if cap > 0 && crate::input::is_code(kind) => Ok(Reportable {
                    kind: kind.to_string(),
                    daily_cap: cap,
                    distinct_targets: distinct,
                }),
                _ => Err(format!("{item:?} is not kind:cap[:distinct]")),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn tz() -> FixedOffset {
        FixedOffset::east_opt(8 * 3600).unwrap()
    }

    #[test]
    fn daily_and_weekly_tasks_count_per_business_period() {
        assert_eq!(
            period_of(TaskKind::Daily, day("2026-11-24")),
            "d:2026-11-24"
        );
        assert_eq!(period_of(TaskKind::Weekly, day("2026-11-29")), "w:2026-W48");
        assert_eq!(period_of(TaskKind::Weekly, day("2026-11-30")), "w:2026-W49");
        assert_eq!(period_of(TaskKind::Challenge, day("2026-11-30")), "all");
    }

    #[test]
    fn periods_end_at_the_next_local_midnight_or_monday() {
        let end = period_end(TaskKind::Daily, day("2026-11-24"), tz()).unwrap();
        assert_eq!(end.to_rfc3339(), "2026-11-24T16:00:00+00:00");
        // Wednesday 25th: the week ends at Monday 30th 00:00 +08:00.
        let week = period_end(TaskKind::Weekly, day("2026-11-25"), tz()).unwrap();
        assert_eq!(week.to_rfc3339(), "2026-11-29T16:00:00+00:00");
        let sunday = period_end(TaskKind::Weekly, day("2026-11-29"), tz()).unwrap();
        assert_eq!(sunday, week);
        assert_eq!(period_end(TaskKind::Once, day("2026-11-25"), tz()), None);
    }

    #[test]
    fn events_advance_the_tasks_that_count_them() {
        assert_eq!(
            task_events(&Event::PurchasePaid { yuan: 120 }),
            vec![("purchase".into(), 1), ("spend".into(), 120)]
        );
        assert_eq!(
            task_events(&Event::Drew { count: 10 }),
            vec![("draw".into(), 10)]
        );
        assert_eq!(
            task_events(&Event::Reported {
                kind: "share".into()
            }),
            vec![("share".into(), 1)]
        );
        assert!(task_events(&Event::TaskClaimed).is_empty());
    }

    #[test]
    fn a_task_is_seen_by_its_audience_in_its_window_and_hidden_ones_once_unlocked() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let task = |kind, min_tier_rank, audience_segment| Visibility {
            kind,
            active: true,
            starts_at: None,
            ends_at: None,
            min_tier_rank,
            audience_segment,
        };
        let who = |tier_rank, segment, hidden_unlocked| Audience {
            tier_rank,
            segment,
            hidden_unlocked,
        };
        assert!(visible(
            &task(TaskKind::Daily, None, None),
            &who(0, None, false),
            now
        ));
        assert!(!visible(
            &task(TaskKind::Daily, Some(2), None),
            &who(1, None, false),
            now
        ));
        assert!(visible(
            &task(TaskKind::Daily, Some(2), None),
            &who(2, None, false),
            now
        ));
        let share = task(TaskKind::Daily, None, Some("general_develop"));
        assert!(visible(
            &share,
            &who(0, Some("general_develop"), false),
            now
        ));
        assert!(!visible(
            &share,
            &who(0, Some("important_value"), false),
            now
        ));
        assert!(!visible(
            &task(TaskKind::Hidden, None, None),
            &who(0, None, false),
            now
        ));
        assert!(visible(
            &task(TaskKind::Hidden, None, None),
            &who(0, None, true),
            now
        ));
        let ended = Visibility {
            ends_at: Some(now),
            ..task(TaskKind::Once, None, None)
        };
        assert!(!visible(&ended, &who(0, None, false), now));
    }

    #[test]
    fn the_allow_list_reads_kind_cap_and_distinct() {
        let list = parse_reportables("browse_item:50:distinct, share:20,review:5").unwrap();
        assert_eq!(
            list[0],
            Reportable {
                kind: "browse_item".into(),
                daily_cap: 50,
                distinct_targets: true
            }
        );
        assert_eq!(list[1].daily_cap, 20);
        assert!(!list[2].distinct_targets);
        assert!(parse_reportables("share").is_err());
        assert!(parse_reportables("share:0").is_err());
        assert!(parse_reportables("Share!:3").is_err());
        assert!(parse_reportables("share:3:twice").is_err());
    }
}
