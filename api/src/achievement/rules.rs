//! Pure rules of the achievement wall: which metrics exist, progress, rarity, the showcase, and
//! leaderboard ranks.

use async_graphql::Enum;
use chrono::{DateTime, Utc};

/// The member metrics `progress` keeps (period `all`) that achievements may watch.
pub const METRICS: &[&str] = &[
    "checkin.streak",
    "checkin.total",
    "invite.count",
    "purchase.count",
    "purchase.amount",
    "mall.redemptions",
    "blindbox.draws",
    "points.earned",
    "tasks.claimed",
    "donation.points",
    "achievements.unlocked",
];

pub const SHOWCASE_SIZE: usize = 6;

pub fn known_metric(metric: &str) -> bool {
    METRICS.contains(&metric)
}

/// Progress shown on the wall: the metric, capped at the threshold.
pub fn progress(value: i64, threshold: i64) -> i64 {
    value.clamp(0, threshold)
}

/// Share of members who hold an achievement, 0..1.
pub fn rarity(unlocked_count: i64, members: i64) -> f64 {
    if members <= 0 {
        0.0
    } else {
        (unlocked_count as f64 / members as f64).clamp(0.0, 1.0)
    }
}

/// Checks a showcase: at most six, each unlocked, none twice. Returns the first bad code.
pub fn check_showcase<'a>(
    codes: &'a [String],
    unlocked: &[String],
) -> Result<(), (&'static str, Option<&'a str>)> {
    if codes.len() > SHOWCASE_SIZE {
        return Err(("at most 6 achievements fit the showcase", None));
    }
    for (i, code) in codes.iter().enumerate() {
        if codes[..i].contains(code) {
            return Err(("an achievement appears twice", Some(code)));
        }
        if !unlocked.contains(code) {
            return Err(("only unlocked achievements can be shown", Some(code)));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum LeaderboardKind {
    PointsEarnedMonth,
    CheckinStreak,
    Achievements,
}

impl LeaderboardKind {
    pub fn metric(self) -> &'static str {
        match self {
            LeaderboardKind::PointsEarnedMonth => "points.earned",
            LeaderboardKind::CheckinStreak => "checkin.streak",
            LeaderboardKind::Achievements => "achievements.unlocked",
        }
    }

    /// Monthly boards count this business month; the others are all-time.
    pub fn monthly(self) -> bool {
        self == LeaderboardKind::PointsEarnedMonth
    }
}

/// One score on a board: who reached it first ranks first among equals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub member_id: i64,
    pub value: i64,
    pub reached_at: DateTime<Utc>,
}

/// Orders scores best first: higher value, then earlier arrival, then lower member id.
pub fn rank(scores: &mut [Score]) {
    scores.sort_by(|a, b| {
        b.value
            .cmp(&a.value)
            .then(a.reached_at.cmp(&b.reached_at))
            .then(a.member_id.cmp(&b.member_id))
    });
}

/// 1-based rank of `member_id` in ranked scores.
pub fn rank_of(ranked: &[Score], member_id: i64) -> Option<i64> {
    ranked
        .iter()
        .position(|s| s.member_id == member_id)
        .map(|i| i as i64 + 1)
}

/// Whether `a` ranks ahead of `b` (the order of `rank`).
pub fn ranks_ahead(a: &Score, b: &Score) -> bool {
    (b.value, a.reached_at, a.member_id) < (a.value, b.reached_at, b.member_id)
}

/// 1-based rank the member's *current* score takes among a board's ranked scores, which may be
/// older than it: everyone else ahead of it, plus one. The member's own (older) entry is not
/// counted, so a member always sees the rank their current score earns.
pub fn rank_among(ranked: &[Score], mine: &Score) -> i64 {
    ranked
        .iter()
        .filter(|s| s.member_id != mine.member_id && ranks_ahead(s, mine))
        .count() as i64
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_score_ranks_among_an_older_board() {
        let score = |member_id, value, secs| Score {
            member_id,
            value,
            reached_at: at(secs),
        };
        let mut board = vec![score(1, 50, 0), score(2, 30, 1), score(3, 10, 2)];
        rank(&mut board);
        // Member 3 has since reached 40: second, though the board still holds their 10.
        assert_eq!(rank_among(&board, &score(3, 40, 9)), 2);
        // A tie on value goes to whoever got there first.
        assert_eq!(rank_among(&board, &score(3, 30, 0)), 2);
        assert_eq!(rank_among(&board, &score(3, 30, 5)), 3);
        // Not on the board yet: ranked all the same.
        assert_eq!(rank_among(&board, &score(4, 60, 9)), 1);
        // The board's own order agrees with `rank_among` for every member on it.
        for (i, s) in board.iter().enumerate() {
            assert_eq!(rank_among(&board, s), i as i64 + 1);
        }
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn progress_is_capped_at_the_threshold() {
        assert_eq!(progress(2, 3), 2);
        assert_eq!(progress(9, 3), 3);
        assert_eq!(progress(-1, 3), 0);
    }

    #[test]
    fn rarity_is_the_share_of_members_holding_it() {
        assert_eq!(rarity(1, 4), 0.25);
        assert_eq!(rarity(0, 0), 0.0);
    }

    #[test]
    fn the_showcase_takes_up_to_six_unlocked_achievements_once_each() {
        let unlocked: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let codes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_showcase(&codes(&["b", "a"]), &unlocked).is_ok());
        assert!(check_showcase(&[], &unlocked).is_ok());
        let locked = codes(&["a", "z"]);
        assert_eq!(check_showcase(&locked, &unlocked).unwrap_err().1, Some("z"));
        assert!(check_showcase(&codes(&["a", "a"]), &unlocked).is_err());
        assert!(check_showcase(&codes(&["a"; 7]), &unlocked).is_err());
    }

    #[test]
    fn ties_are_ranked_by_who_got_there_first() {
        let mut scores = vec![
            Score {
                member_id: 1,
                value: 10,
                reached_at: at(30),
            },
            Score {
                member_id: 2,
                value: 20,
                reached_at: at(50),
            },
            Score {
                member_id: 3,
                value: 10,
                reached_at: at(10),
            },
        ];
        rank(&mut scores);
        assert_eq!(
            scores.iter().map(|s| s.member_id).collect::<Vec<_>>(),
            vec![2, 3, 1]
        );
        assert_eq!(rank_of(&scores, 1), Some(3));
        assert_eq!(rank_of(&scores, 9), None);
    }

    #[test]
    fn only_metrics_progress_keeps_can_be_watched() {
        assert!(known_metric("checkin.streak"));
        assert!(!known_metric("likes.count"));
    }
}
