//! Leaderboards: a metric in its period, ranked (ties to whoever got there first), from Redis
//! sorted sets or, without Redis, from the database, kept as long as Redis would keep them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::member;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};

use super::rules::{self, LeaderboardKind, Score};
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::AppResult;
use crate::member::MemberId;
use crate::progress::{self, Period};

pub struct Board {
    pub entries: Vec<(i64, member::Model, i64)>,
    pub my_rank: Option<i64>,
}

/// Seconds a board's sorted set lives in Redis before it is rebuilt from the database.
const BOARD_TTL_SECONDS: i64 = 30;
/// Scores pack the value above the arrival time, so one sorted-set score orders both:
/// `value * 2^31 - seconds since 2020`, exact for values below 2^22.
const SCORE_SCALE: f64 = 2_147_483_648.0;
const EPOCH_2020: i64 = 1_577_836_800;

fn packed_score(s: &Score) -> f64 {
    s.value as f64 * SCORE_SCALE
        - (s.reached_at.timestamp() - EPOCH_2020).clamp(0, i64::from(i32::MAX)) as f64
}

fn unpacked_value(score: f64) -> i64 {
    (score / SCORE_SCALE).ceil() as i64
}

/// The sorted-set member: fixed-width digits, so that among equal scores (same value, same
/// second) the larger name is the earlier arrival within the second, then the lower member id,
/// the database's order. ZREVRANGE returns larger names first.
fn entry_name(s: &Score) -> String {
    format!(
        "{:06}{:019}",
        999_999 - std::cmp::min(s.reached_at.timestamp_subsec_micros(), 999_999),
        i64::MAX - s.member_id
    )
}

fn member_of(name: &str) -> Option<i64> {
    let inverted: i64 = name.get(6..)?.parse().ok()?;
    Some(i64::MAX - inverted)
}

fn board_period(kind: LeaderboardKind, settings: &Settings, now: DateTime<Utc>) -> String {
    if kind.monthly() {
        progress::rules::period_key(Period::Month, business_date(now, settings.timezone))
    } else {
        "all".to_string()
    }
}

/// Every score of a board from the database, ranked, blacklisted members left out.
async fn ranked_scores(
    db: &DatabaseConnection,
    kind: LeaderboardKind,
    period: &str,
) -> AppResult<Vec<Score>> {
    let excluded: Vec<i64> = member::Entity::find()
        .select_only()
        .column(member::Column::Id)
        .filter(member::Column::BlacklistedAt.is_not_null())
        .into_tuple()
        .all(db)
        .await?;
    let mut scores: Vec<Score> = progress::holders(db, kind.metric(), period, 1, excluded)
        .await?
        .into_iter()
        .map(|(member_id, value, reached_at)| Score {
            member_id,
            value,
            reached_at,
        })
        .collect();
    rules::rank(&mut scores);
    Ok(scores)
}

/// The top of a board and the member's rank, from a Redis sorted set built from the database
/// when missing. Writes never touch Redis, so a rolled-back event never shows on a board; a board
/// is at most `BOARD_TTL_SECONDS` behind.
async fn redis_board(
    db: &DatabaseConnection,
    redis: &redis::aio::ConnectionManager,
    key: &str,
    kind: LeaderboardKind,
    period: &str,
    first: u64,
    member_id: i64,
) -> AppResult<(Vec<(i64, i64)>, Option<i64>)> {
    let mut con = redis.clone();
    let exists: bool = redis::cmd("EXISTS").arg(key).query_async(&mut con).await?;
    if !exists {
        let scores = ranked_scores(db, kind, period).await?;
        if !scores.is_empty() {
            let mut pipe = redis::pipe();
            pipe.atomic().cmd("DEL").arg(key).ignore();
            for chunk in scores.chunks(500) {
                let mut zadd = redis::cmd("ZADD");
                zadd.arg(key);
                for s in chunk {
                    zadd.arg(packed_score(s)).arg(entry_name(s));
                }
                pipe.add_command(zadd).ignore();
            }
            pipe.cmd("EXPIRE").arg(key).arg(BOARD_TTL_SECONDS).ignore();
            pipe.query_async::<()>(&mut con).await?;
        }
    }
    let top: Vec<(String, f64)> = redis::cmd("ZREVRANGE")
        .arg(key)
        .arg(0)
        .arg(first as i64 - 1)
        .arg("WITHSCORES")
        .query_async(&mut con)
        .await?;
    // The member's own entry name comes from their metric row.
    let mine = progress::entry(db, member_id, kind.metric(), period).await?;
    let rank: Option<i64> = match mine {
        Some((value, reached_at)) => {
            let name = entry_name(&Score {
                member_id,
                value,
                reached_at,
            });
            redis::cmd("ZREVRANK")
                .arg(key)
                .arg(name)
                .query_async(&mut con)
                .await?
        }
        None => None,
    };
    let top = top
        .into_iter()
        .filter_map(|(name, score)| Some((member_of(&name)?, unpacked_value(score))))
        .collect();
    Ok((top, rank.map(|r| r + 1)))
}

/// Leaderboards ranked in this process (no Redis), kept as long as Redis would keep them.
#[derive(Default)]
pub struct LeaderboardCache(crate::cache::Keyed<Vec<rules::Score>>);

/// A leaderboard: the board's metric in its period, blacklisted members left out, ties ranked by
/// who got there first. With Redis, read from a sorted set; without (or if Redis fails), from
/// the database.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn leaderboard(
    app: &crate::state::AppState,
    kind: LeaderboardKind,
    first: u64,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<Board> {
    let member_id = member.get();
    let (db, settings) = (&app.db, app.settings.as_ref());
    let boards = &app.extensions.get::<LeaderboardCache>()?.0;
    let redis = app
        .redis
        .as_ref()
        .map(|r| (r, app.settings.redis_key_prefix.as_str()));
    let period = board_period(kind, settings, now);
    let from_redis = match redis {
        Some((con, prefix)) => {
            let key = format!("{prefix}lb:{}:{period}", kind.metric());
            match redis_board(db, con, &key, kind, &period, first, member_id).await {
                Ok(board) => Some(board),
                Err(e) => {
                    tracing::warn!(error = %e, "leaderboard from Redis failed; reading the database");
                    None
                }
            }
        }
        None => None,
    };
    let (top, my_rank) = match from_redis {
        Some(board) => board,
        None => {
            // Without Redis the ranking is kept in this process for as long as Redis would keep
            // its sorted set: ranking every member per request took seconds and hundreds of MB
            // under load.
            let key = format!("{}:{period}", kind.metric());
            let scores = boards
                .get(&key, || ranked_scores(db, kind, &period))
                .await?;
            let my_rank = rules::rank_of(&scores, member_id);
            (
                scores
                    .iter()
                    .take(first as usize)
                    .map(|s| (s.member_id, s.value))
                    .collect(),
                my_rank,
            )
        }
    };
    let ids: Vec<i64> = top.iter().map(|(id, _)| *id).collect();
    let members: HashMap<i64, member::Model> = member::Entity::find()
        .filter(member::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let entries = top
        .into_iter()
        .enumerate()
        .filter_map(|(i, (id, value))| members.get(&id).map(|m| (i as i64 + 1, m.clone(), value)))
        .collect();
    Ok(Board { entries, my_rank })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_scores_order_by_value_then_arrival_and_unpack_exactly() {
        let at = |s: i64| DateTime::from_timestamp(EPOCH_2020 + s, 0).unwrap();
        let score = |value, secs| {
            packed_score(&Score {
                member_id: 1,
                value,
                reached_at: at(secs),
            })
        };
        assert!(score(10, 500) > score(9, 1));
        assert!(
            score(10, 100) > score(10, 200),
            "earlier arrival ranks higher"
        );
        for (value, secs) in [(1, 1), (300, 200_000_000), (4_000_000, 5)] {
            assert_eq!(unpacked_value(score(value, secs)), value);
        }
        // Within one second: the earlier arrival, then the lower id, has the larger name.
        let named = |id, micros| {
            entry_name(&Score {
                member_id: id,
                value: 1,
                reached_at: at(5) + chrono::Duration::microseconds(micros),
            })
        };
        assert!(named(9, 100) > named(3, 200));
        assert!(named(3, 100) > named(9, 100));
        assert_eq!(member_of(&named(42, 7)), Some(42));
    }
}
