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
    redis: &crate::redis_conn::RedisConnection,
    key: &str,
    kind: LeaderboardKind,
    period: &str,
    first: u64,
    mine: Option<&Score>,
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
    let rank = match mine {
        Some(mine) => Some(redis_rank(&mut con, key, mine).await?),
        None => None,
    };
    let top = top
        .into_iter()
        .filter_map(|(name, score)| Some((member_of(&name)?, unpacked_value(score))))
        .collect();
    Ok((top, rank))
}

/// The rank the member's current score takes on the sorted set, which may be older than it:
/// those with a higher packed score, plus those with the same score that order before it, plus
/// one. Metric values only grow, so the member's own older entry never scores higher than the
/// current one; among equal scores it is skipped by id.
async fn redis_rank(
    con: &mut crate::redis_conn::RedisConnection,
    key: &str,
    mine: &Score,
) -> AppResult<i64> {
    let score = packed_score(mine);
    let higher: i64 = redis::cmd("ZCOUNT")
        .arg(key)
        .arg(format!("({score}"))
        .arg("+inf")
        .query_async(con)
        .await?;
    let tied: Vec<String> = redis::cmd("ZRANGEBYSCORE")
        .arg(key)
        .arg(score)
        .arg(score)
        .query_async(con)
        .await?;
    let name = entry_name(mine);
    let tied_ahead = tied
        .iter()
        .filter(|other| member_of(other) != Some(mine.member_id) && **other > name)
        .count() as i64;
    Ok(higher + tied_ahead + 1)
}

/// The member's current score on a board, if they are on it (blacklisted members are not).
async fn current_score(
    db: &DatabaseConnection,
    kind: LeaderboardKind,
    period: &str,
    member: MemberId,
) -> AppResult<Option<Score>> {
    let Some((value, reached_at)) =
        progress::entry(db, member.get(), kind.metric(), period).await?
    else {
        return Ok(None);
    };
    if value < 1
        || crate::member::require(db, member)
            .await?
            .blacklisted_at
            .is_some()
    {
        return Ok(None);
    }
    Ok(Some(Score {
        member_id: member.get(),
        value,
        reached_at,
    }))
}

/// Leaderboards ranked in this process (no Redis), kept as long as Redis would keep them.
pub struct LeaderboardCache(crate::cache::Keyed<Vec<rules::Score>>);

impl Default for LeaderboardCache {
    fn default() -> Self {
        LeaderboardCache(crate::cache::Keyed::named("leaderboards"))
    }
}

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
    let (db, settings) = (&app.db, app.settings.as_ref());
    let boards = &app.extensions.get::<LeaderboardCache>()?.0;
    let redis = app
        .redis
        .as_ref()
        .map(|r| (r, app.settings.redis_key_prefix.as_str()));
    let period = board_period(kind, settings, now);
    // The member's rank is always that of their current score, however old the board is.
    let mine = current_score(db, kind, &period, member).await?;
    let from_redis = match redis {
        Some((con, prefix)) => {
            // One hash tag per board: its pipeline runs on one cluster slot.
            let key = format!("{prefix}{{lb:{}:{period}}}", kind.metric());
            match redis_board(db, con, &key, kind, &period, first, mine.as_ref()).await {
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
            let my_rank = mine.as_ref().map(|mine| rules::rank_among(&scores, mine));
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
