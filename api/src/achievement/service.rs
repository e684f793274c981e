//! Achievement use cases: definitions, unlocking from metric changes (in the event's
//! transaction), the wall, showcase and titles, leaderboards, and the backfill job.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{achievement, member, member_achievement, member_title};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

use super::rules::{self, LeaderboardKind, Score};
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::member::MemberId;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event, Grant, Period, Progress, ProgressHandler, Unlocked};

pub struct AchievementChange {
    pub code: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub icon_url: Option<String>,
    pub metric: String,
    pub threshold: i64,
    pub reward_points: i64,
    pub title_code: Option<String>,
    pub title_name: Option<String>,
    pub hidden: bool,
}

#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &impl ConnectionTrait,
    c: AchievementChange,
    now: DateTime<Utc>,
) -> AppResult<achievement::Model> {
    let code = c.code.trim().to_ascii_lowercase();
    if !crate::input::is_code(&code) {
        return Err(AppError::validation(
            "code",
            "code is 1 to 64 of a-z, 0-9, '_' or '.'",
        ));
    }
    if !rules::known_metric(c.metric.trim()) {
        return Err(AppError::validation(
            "metric",
            format!("metric is one of {}", rules::METRICS.join(", ")),
        ));
    }
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 64 characters",
        ));
    }
    crate::input::bounded("threshold", c.threshold, crate::input::TOTAL)?;
    if !(0..=100_000).contains(&c.reward_points) {
        return Err(AppError::validation(
            "rewardPoints",
            "rewardPoints must be 0 to 100,000",
        ));
    }
    let title_code = c
        .title_code
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty());
    let title_name = c
        .title_name
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    if title_code.is_some() != title_name.is_some()
        || title_code
            .as_deref()
            .is_some_and(|t| !crate::input::is_code(t))
    {
        return Err(AppError::validation(
            "titleCode",
            "a title needs both a code (a-z, 0-9, '_') and a name",
        ));
    }
    let existing = achievement::Entity::find()
        .filter(achievement::Column::Code.eq(&code))
        .one(db)
        .await?;
    let is_new = existing.is_none();
    let mut a: achievement::ActiveModel = existing.map(Into::into).unwrap_or_default();
    if is_new {
        a.unlocked_count = Set(0);
    }
    a.code = Set(code);
    a.name = Set(name.to_string());
    a.description = Set(c.description.trim().chars().take(255).collect());
    a.category = Set(c.category.trim().chars().take(32).collect());
    a.icon_url = Set(c.icon_url.filter(|u| !u.trim().is_empty()));
    a.metric = Set(c.metric.trim().to_string());
    a.threshold = Set(c.threshold);
    a.reward_points = Set(c.reward_points);
    a.title_code = Set(title_code);
    a.title_name = Set(title_name);
    a.hidden = Set(c.hidden);
    a.updated_at = Set(now);
    Ok(if is_new {
        a.insert(db).await?
    } else {
        a.update(db).await?
    })
}

/// Unlocks one achievement for one member, once: the reward through the ledger, the title and
/// the member's `achievements.unlocked` metric. False if already held. The caller counts the
/// holder (see `count_holders`).
async fn unlock(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    a: &achievement::Model,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let savepoint = txn.begin().await?;
    let inserted = member_achievement::ActiveModel {
        member_id: Set(member_id),
        achievement_id: Set(a.id),
        unlocked_at: Set(now),
        ..Default::default()
    }
    .insert(&savepoint)
    .await;
    match inserted {
        Ok(_) => savepoint.commit().await?,
        Err(e) if AppError::is_unique_violation(&e) => {
            savepoint.rollback().await?;
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    let blacklisted = member::Entity::find_by_id(member_id)
        .one(txn)
        .await?
        .is_none_or(|m| m.blacklisted_at.is_some());
    if a.reward_points > 0 && !blacklisted {
        let reward = Movement::new(
            member_id,
            a.reward_points,
            LedgerKind::Earn,
            "achievement",
            now,
        )
        .source_id(&a.code)
        .once(format!("achievement:{}", a.code));
        points::credit(txn, &reward, Expiry::After(settings.points.ttl)).await?;
    }
    if let (Some(code), Some(name)) = (&a.title_code, &a.title_name) {
        let held = member_title::Entity::find()
            .filter(member_title::Column::MemberId.eq(member_id))
            .filter(member_title::Column::Code.eq(code))
            .count(txn)
            .await?;
        if held == 0 {
            member_title::ActiveModel {
                member_id: Set(member_id),
                code: Set(code.clone()),
                name: Set(name.clone()),
                granted_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?;
        }
    }
    progress::add(txn, member_id, "achievements.unlocked", "all", 1, now).await?;
    Ok(true)
}

/// Unlocks whatever the member now meets among achievements on `metrics`; repeats for
/// achievements on the count of achievements. Returns the codes unlocked.
async fn unlock_met(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    metrics: Vec<(String, i64)>,
    now: DateTime<Utc>,
) -> AppResult<Vec<Unlocked>> {
    let mut unlocked = Vec::new();
    let mut holders_of = Vec::new();
    let mut pending = metrics;
    while !pending.is_empty() {
        // One query for every metric that moved, leaving out what the member already holds, so
        // an event that unlocks nothing costs one round trip.
        let mut met = Condition::any();
        for (metric, value) in pending.drain(..) {
            met = met.add(
                Condition::all()
                    .add(achievement::Column::Metric.eq(metric))
                    .add(achievement::Column::Threshold.lte(value)),
            );
        }
        let held = Query::select()
            .column(member_achievement::Column::AchievementId)
            .from(member_achievement::Entity)
            .and_where(member_achievement::Column::MemberId.eq(member_id))
            .to_owned();
        let candidates = achievement::Entity::find()
            .filter(met)
            .filter(achievement::Column::Id.not_in_subquery(held))
            .order_by_asc(achievement::Column::Id)
            .all(txn)
            .await?;
        let mut any = false;
        for a in candidates {
            if unlock(txn, settings, member_id, &a, now).await? {
                holders_of.push(a.id);
                unlocked.push(Unlocked::Achievement(super::graphql::view(&a)));
                any = true;
            }
        }
        if any {
            let count = progress::value(txn, member_id, "achievements.unlocked", "all").await?;
            pending.push(("achievements.unlocked".to_string(), count));
        }
    }
    count_holders(txn, holders_of).await?;
    Ok(unlocked)
}

/// Adds the new holders to each achievement's count. Every member's event that unlocks a popular
/// achievement writes the same row, so it is done last (the row lock is held only until the
/// commit) and in id order (two events that unlock the same two achievements queue instead of
/// deadlocking).
async fn count_holders(txn: &DatabaseTransaction, mut ids: Vec<i64>) -> AppResult<()> {
    ids.sort_unstable();
    for id in ids {
        achievement::Entity::update_many()
            .col_expr(
                achievement::Column::UnlockedCount,
                Expr::col(achievement::Column::UnlockedCount).add(1i64),
            )
            .filter(achievement::Column::Id.eq(id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

/// Asks achievements after every metric change, in the same transaction.
pub struct AchievementUnlocker;

pub static ACHIEVEMENTS: AchievementUnlocker = AchievementUnlocker;

#[async_trait::async_trait]
impl ProgressHandler for AchievementUnlocker {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        p: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>> {
        if let Event::Granted(Grant::Title { code }) = p.event {
            grant_title(txn, MemberId::new(p.member_id), code, p.now).await?;
            return Ok(Vec::new());
        }
        let all_time: Vec<(String, i64)> = p
            .changed
            .iter()
            .filter(|m| m.period == "all" && rules::known_metric(&m.metric))
            .map(|m| (m.metric.clone(), m.value))
            .collect();
        if all_time.is_empty() {
            return Ok(Vec::new());
        }
        unlock_met(txn, p.settings, p.member_id, all_time, p.now).await
    }

    async fn resolves(&self, txn: &DatabaseTransaction, grant: &Grant) -> AppResult<Option<bool>> {
        Ok(match grant {
            Grant::Title { code } => Some(title_name(txn, code).await?.is_some()),
            _ => None,
        })
    }
}

/// Job BACKFILL_ACHIEVEMENTS: unlocks every achievement members already meet (after an operator
/// defines a new one), without waiting for their next event. One transaction per member.
#[tracing::instrument(skip_all)]
pub async fn backfill(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let achievements = achievement::Entity::find().all(db).await?;
    let mut by_member: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
    for a in &achievements {
        for (member_id, value, _) in
            progress::holders(db, &a.metric, "all", a.threshold, Vec::new()).await?
        {
            by_member
                .entry(member_id)
                .or_default()
                .push((a.metric.clone(), value));
        }
    }
    let mut unlocked = 0;
    for (member_id, metrics) in by_member {
        let txn = db.begin().await?;
        unlocked += unlock_met(&txn, settings, member_id, metrics, now)
            .await?
            .len() as u64;
        txn.commit().await?;
    }
    Ok(unlocked)
}

#[tracing::instrument(skip_all)]
pub async fn by_codes(
    db: &impl ConnectionTrait,
    codes: &[String],
) -> AppResult<Vec<achievement::Model>> {
    let rows = achievement::Entity::find()
        .filter(achievement::Column::Code.is_in(codes.iter().cloned()))
        .all(db)
        .await?;
    // In the order asked for.
    Ok(codes
        .iter()
        .filter_map(|c| rows.iter().find(|a| &a.code == c).cloned())
        .collect())
}

pub struct WallEntry {
    pub achievement: achievement::Model,
    pub progress: i64,
    pub unlocked_at: Option<DateTime<Utc>>,
    pub rarity: f64,
}

pub struct Wall {
    pub showcase: Vec<achievement::Model>,
    pub entries: Vec<WallEntry>,
    pub titles: Vec<member_title::Model>,
}

fn showcase_codes(m: &member::Model) -> Vec<String> {
    m.showcase
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn wall(db: &DatabaseConnection, member: MemberId) -> AppResult<Wall> {
    let member_id = member.get();
    let m = crate::member::require(db, crate::member::MemberId::new(member_id)).await?;
    let unlocked: HashMap<i64, DateTime<Utc>> = member_achievement::Entity::find()
        .filter(member_achievement::Column::MemberId.eq(member_id))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.achievement_id, u.unlocked_at))
        .collect();
    let metrics: HashMap<String, i64> = progress::values_of(db, member_id, "all")
        .await?
        .into_iter()
        .collect();
    let members = member::Entity::find().count(db).await? as i64;
    let entries = achievement::Entity::find()
        .order_by_asc(achievement::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .filter(|a| !a.hidden || unlocked.contains_key(&a.id))
        .map(|a| WallEntry {
            progress: rules::progress(metrics.get(&a.metric).copied().unwrap_or(0), a.threshold),
            unlocked_at: unlocked.get(&a.id).copied(),
            rarity: rules::rarity(a.unlocked_count, members),
            achievement: a,
        })
        .collect();
    let titles = member_title::Entity::find()
        .filter(member_title::Column::MemberId.eq(member_id))
        .order_by_asc(member_title::Column::Id)
        .all(db)
        .await?;
    Ok(Wall {
        showcase: by_codes(db, &showcase_codes(&m)).await?,
        entries,
        titles,
    })
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn set_showcase(
    db: &DatabaseConnection,
    member: MemberId,
    codes: Vec<String>,
) -> AppResult<()> {
    let member_id = member.get();
    let held_ids: Vec<i64> = member_achievement::Entity::find()
        .select_only()
        .column(member_achievement::Column::AchievementId)
        .filter(member_achievement::Column::MemberId.eq(member_id))
        .into_tuple()
        .all(db)
        .await?;
    let held: Vec<String> = achievement::Entity::find()
        .filter(achievement::Column::Id.is_in(held_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| a.code)
        .collect();
    rules::check_showcase(&codes, &held).map_err(|(message, code)| {
        AppError::validation(
            "achievementCodes",
            code.map_or(message.to_string(), |c| format!("{message}: {c}")),
        )
    })?;
    let json = serde_json::to_string(&codes).map_err(|e| AppError::internal(e.to_string()))?;
    crate::member::set_showcase(db, MemberId::new(member_id), &json).await
}

/// Wears an earned title, or takes it off with `None`.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn equip_title(
    db: &DatabaseConnection,
    member: MemberId,
    code: Option<&str>,
) -> AppResult<member::Model> {
    let member_id = member.get();
    if let Some(code) = code {
        let held = member_title::Entity::find()
            .filter(member_title::Column::MemberId.eq(member_id))
            .filter(member_title::Column::Code.eq(code))
            .count(db)
            .await?;
        if held == 0 {
            return Err(AppError::validation(
                "titleCode",
                "only an earned title can be worn",
            ));
        }
    }
    crate::member::set_active_title(db, member, code).await?;
    crate::member::require(db, member).await
}

/// The name of a title some achievement defines, if any (blind boxes give titles as prizes).
#[tracing::instrument(skip_all)]
pub async fn title_name(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<String>> {
    Ok(achievement::Entity::find()
        .filter(achievement::Column::TitleCode.eq(code))
        .one(db)
        .await?
        .and_then(|a| a.title_name))
}

/// Grants a title; granting one already held changes nothing.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn grant_title(
    txn: &DatabaseTransaction,
    member: MemberId,
    code: &str,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let member_id = member.get();
    let name = title_name(txn, code)
        .await?
        .ok_or(AppError::NotFound("title"))?;
    if title_of(txn, MemberId::new(member_id), code)
        .await?
        .is_none()
    {
        member_title::ActiveModel {
            member_id: Set(member_id),
            code: Set(code.to_string()),
            name: Set(name),
            granted_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn title_of(
    db: &impl ConnectionTrait,
    member: MemberId,
    code: &str,
) -> AppResult<Option<member_title::Model>> {
    let member_id = member.get();
    Ok(member_title::Entity::find()
        .filter(member_title::Column::MemberId.eq(member_id))
        .filter(member_title::Column::Code.eq(code))
        .one(db)
        .await?)
}

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
