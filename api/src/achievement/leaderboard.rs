//! Leaderboards: a metric in its period, ranked (ties to whoever got there first), from Redis
//! sorted sets or, without Redis, from the database, kept as long as Redis would keep them.

use std::collections::HashMap;
use std::sync::Arc;

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

/// Builds a board's sorted set from the database (when it is missing: the first read after
/// `BOARD_TTL_SECONDS`). Writes never touch Redis, so a rolled-back event never shows on a board.
async fn build_redis_board(
    db: &DatabaseConnection,
    con: &mut crate::redis_conn::RedisConnection,
    key: &str,
    kind: LeaderboardKind,
    period: &str,
) -> AppResult<()> {
    let scores = ranked_scores(db, kind, period).await?;
    if scores.is_empty() {
        return Ok(());
    }
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
    pipe.query_async::<()>(con).await?;
    Ok(())
}

/// The top `first` of a board's sorted set, in one round trip; `None` if the set is missing.
async fn redis_top(
    con: &mut crate::redis_conn::RedisConnection,
    key: &str,
    first: u64,
) -> AppResult<Option<Vec<(i64, i64)>>> {
    let (exists, top): (bool, Vec<(String, f64)>) = redis::pipe()
        .cmd("EXISTS")
        .arg(key)
        .cmd("ZREVRANGE")
        .arg(key)
        .arg(0)
        .arg(first as i64 - 1)
        .arg("WITHSCORES")
        .query_async(con)
        .await?;
    Ok(exists.then(|| {
        top.into_iter()
            .filter_map(|(name, score)| Some((member_of(&name)?, unpacked_value(score))))
            .collect()
    }))
}

/// The rank the member's current score takes on the sorted set, in one round trip; `None` if
/// the set is missing. The set may be older than the score: those with a higher packed score,
/// plus those with the same score that order before it, plus one. Metric values only grow, so
/// the member's own older entry never scores higher than the current one; among equal scores it
/// is skipped by id.
async fn redis_rank(
    con: &mut crate::redis_conn::RedisConnection,
    key: &str,
    mine: &Score,
) -> AppResult<Option<i64>> {
    let score = packed_score(mine);
    let (exists, higher, tied): (bool, i64, Vec<String>) = redis::pipe()
        .cmd("EXISTS")
        .arg(key)
        .cmd("ZCOUNT")
        .arg(key)
        .arg(format!("({score}"))
        .arg("+inf")
        .cmd("ZRANGEBYSCORE")
        .arg(key)
        .arg(score)
        .arg(score)
        .query_async(con)
        .await?;
    if !exists {
        return Ok(None);
    }
    let name = entry_name(mine);
    let tied_ahead = tied
        .iter()
        .filter(|other| member_of(other) != Some(mine.member_id) && **other > name)
        .count() as i64;
    Ok(Some(higher + tied_ahead + 1))
}

/// The top of a board and the member's rank from Redis: one round trip for the rank, one for
/// the top when it is not in `tops`, and a rebuild from the database when the set is missing.
async fn redis_board(
    app: &crate::state::AppState,
    con: &crate::redis_conn::RedisConnection,
    key: &str,
    (kind, period): (LeaderboardKind, &str),
    first: u64,
    mine: Option<&Score>,
) -> AppResult<(Arc<Vec<Entry>>, Option<i64>)> {
    let db = &app.db;
    let tops = &app.extensions.get::<LeaderboardCache>()?.tops;
    let mut con = con.clone();
    let rank = match mine {
        None => None,
        Some(mine) => match redis_rank(&mut con, key, mine).await? {
            Some(rank) => Some(rank),
            None => {
                build_redis_board(db, &mut con, key, kind, period).await?;
                Some(redis_rank(&mut con, key, mine).await?.unwrap_or(1))
            }
        },
    };
    let top = tops
        .get(&format!("{key}:{first}"), || async {
            let mut con = con.clone();
            let top = match redis_top(&mut con, key, first).await? {
                Some(top) => top,
                None => {
                    build_redis_board(db, &mut con, key, kind, period).await?;
                    redis_top(&mut con, key, first).await?.unwrap_or_default()
                }
            };
            render(db, top).await
        })
        .await?;
    Ok((top, rank))
}

/// A board's top with each member's card (rank, member, value); members no longer there are
/// left out.
async fn render(db: &DatabaseConnection, top: Vec<(i64, i64)>) -> AppResult<Vec<Entry>> {
    let ids: Vec<i64> = top.iter().map(|(id, _)| *id).collect();
    let members: HashMap<i64, member::Model> = member::Entity::find()
        .filter(member::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    Ok(top
        .into_iter()
        .enumerate()
        .filter_map(|(i, (id, value))| members.get(&id).map(|m| (i as i64 + 1, m.clone(), value)))
        .collect())
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

/// One row of a board: rank, member, value.
type Entry = (i64, member::Model, i64);

/// How long an instance shows the same rendered top of a board: reading the top's members for
/// every request was most of a leaderboard's cost. Boards are thus at most this much older than
/// `BOARD_TTL_SECONDS`; a member's own rank is always fresh.
const TOP_TTL: std::time::Duration = std::time::Duration::from_secs(5);

pub struct LeaderboardCache {
    /// Boards ranked in this process (no Redis), kept as long as Redis would keep them.
    scores: crate::cache::Keyed<Vec<rules::Score>>,
    /// Rendered tops, by board and length.
    tops: crate::cache::Keyed<Vec<Entry>>,
}

impl Default for LeaderboardCache {
    fn default() -> Self {
        LeaderboardCache {
            scores: crate::cache::Keyed::named("leaderboards"),
            tops: crate::cache::Keyed::with_ttl("leaderboard_tops", TOP_TTL),
        }
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
    let cache = app.extensions.get::<LeaderboardCache>()?;
    let period = board_period(kind, settings, now);
    // The member's rank is always that of their current score, however old the board is.
    let mine = current_score(db, kind, &period, member).await?;
    let from_redis = match &app.redis {
        Some(con) => {
            // One hash tag per board: its pipelines run on one cluster slot.
            let prefix = &app.settings.redis_key_prefix;
            let key = format!("{prefix}{{lb:{}:{period}}}", kind.metric());
            match redis_board(app, con, &key, (kind, &period), first, mine.as_ref()).await {
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
            let scores = cache
                .scores
                .get(&key, || ranked_scores(db, kind, &period))
                .await?;
            let my_rank = mine.as_ref().map(|mine| rules::rank_among(&scores, mine));
            let top = cache
                .tops
                .get(&format!("{key}:{first}"), || {
                    let top = scores
                        .iter()
                        .take(first as usize)
                        .map(|s| (s.member_id, s.value))
                        .collect();
                    render(db, top)
                })
                .await?;
            (top, my_rank)
        }
    };
    Ok(Board {
        entries: top.as_ref().clone(),
        my_rank,
    })
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
