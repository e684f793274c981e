//! Blind-box use cases: defining boxes, rotating seeds, members' client seeds, drawing, and the
//! operator's statistics.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use entity::{
    blind_box, blind_box_client_seed, blind_box_draw, blind_box_pity, blind_box_prize,
    blind_box_seed, member,
};
use rand::RngCore;
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use serde::{Deserialize, Serialize};

use super::rules::{self, Candidate, PrizeKind, Rarity};
use crate::clock::business_date;
use crate::config::Settings;
use crate::error::{AppError, AppResult};
use crate::idempotency::{self, Request};
use crate::input;
use crate::member::MemberId;
use crate::pagination::PageRequest;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event, Grant};

pub const MAX_DRAWS_PER_REQUEST: i64 = 10;
const COUPON_PRIZE_VALID_DAYS: i64 = 30;

#[tracing::instrument(skip_all)]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<blind_box::Model>> {
    Ok(blind_box::Entity::find_by_id(id).one(db).await?)
}

/// The boxes members can draw from, in id order.
#[tracing::instrument(skip_all)]
pub async fn active_boxes(db: &impl ConnectionTrait) -> AppResult<Vec<blind_box::Model>> {
    use sea_orm::QueryOrder;
    Ok(blind_box::Entity::find()
        .filter(blind_box::Column::Active.eq(true))
        .order_by_asc(blind_box::Column::Id)
        .all(db)
        .await?)
}

/// The prizes members can win now, in their published order.
#[tracing::instrument(skip_all)]
pub async fn prizes(
    db: &impl ConnectionTrait,
    box_id: i64,
) -> AppResult<Vec<blind_box_prize::Model>> {
    Ok(blind_box_prize::Entity::find()
        .filter(blind_box_prize::Column::BoxId.eq(box_id))
        .filter(blind_box_prize::Column::Retired.eq(false))
        .order_by_asc(blind_box_prize::Column::Position)
        .all(db)
        .await?)
}

pub fn candidate(p: &blind_box_prize::Model) -> Candidate {
    Candidate {
        id: p.id,
        weight: std::cmp::max(p.weight, 0) as u64,
        stock: p.stock,
        rarity: p.rarity,
    }
}

#[tracing::instrument(skip_all)]
pub async fn seed(db: &impl ConnectionTrait, seed_id: i64) -> AppResult<blind_box_seed::Model> {
    blind_box_seed::Entity::find_by_id(seed_id)
        .one(db)
        .await?
        .ok_or_else(|| AppError::internal(format!("seed {seed_id} missing")))
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn pity_count(
    db: &impl ConnectionTrait,
    member: MemberId,
    box_id: i64,
) -> AppResult<i64> {
    let member_id = member.get();
    Ok(blind_box_pity::Entity::find()
        .filter(blind_box_pity::Column::MemberId.eq(member_id))
        .filter(blind_box_pity::Column::BoxId.eq(box_id))
        .one(db)
        .await?
        .map_or(0, |p| p.count))
}

async fn find_client_seed(
    db: &impl ConnectionTrait,
    member_id: i64,
) -> AppResult<Option<blind_box_client_seed::Model>> {
    Ok(blind_box_client_seed::Entity::find()
        .filter(blind_box_client_seed::Column::MemberId.eq(member_id))
        .one(db)
        .await?)
}

fn new_client_seed(
    member_id: i64,
    next_nonce: i64,
    now: DateTime<Utc>,
) -> blind_box_client_seed::ActiveModel {
    blind_box_client_seed::ActiveModel {
        member_id: Set(member_id),
        // Random until the member chooses one, so a default is not guessable either.
        client_seed: Set(random_hex(16)),
        next_nonce: Set(next_nonce),
        updated_at: Set(now),
        ..Default::default()
    }
}

/// The member's client seed and next nonce; the first call gives them a random seed.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn client_seed(
    db: &DatabaseConnection,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<blind_box_client_seed::Model> {
    let member_id = member.get();
    if let Some(found) = find_client_seed(db, member_id).await? {
        return Ok(found);
    }
    // Two first calls at once both insert; the unique member id keeps the first.
    blind_box_client_seed::Entity::insert(new_client_seed(member_id, 0, now))
        .on_conflict(
            OnConflict::column(blind_box_client_seed::Column::MemberId)
                .do_nothing_on([blind_box_client_seed::Column::MemberId])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    find_client_seed(db, member_id)
        .await?
        .ok_or_else(|| AppError::internal("client seed vanished"))
}

/// `setBlindBoxClientSeed`: the member's own client seed for their next draws. Their nonce
/// goes on counting, so no (client seed, nonce) pair is ever used twice.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn set_client_seed(
    db: &DatabaseConnection,
    member: MemberId,
    seed: &str,
    now: DateTime<Utc>,
) -> AppResult<blind_box_client_seed::Model> {
    let member_id = member.get();
    rules::check_client_seed(seed).map_err(|m| AppError::validation("seed", m))?;
    let txn = db.begin().await?;
    let mut chosen = new_client_seed(member_id, 0, now);
    chosen.client_seed = Set(seed.to_string());
    blind_box_client_seed::Entity::insert(chosen)
        .on_conflict(
            OnConflict::column(blind_box_client_seed::Column::MemberId)
                .update_columns([
                    blind_box_client_seed::Column::ClientSeed,
                    blind_box_client_seed::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    let saved = find_client_seed(&txn, member_id)
        .await?
        .ok_or_else(|| AppError::internal("client seed vanished"))?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(saved)
}

/// Takes `count` consecutive nonces of the member, with the client seed they go with. One
/// statement moves the counter, so concurrent draws of a member never share a nonce.
async fn take_member_nonces(
    txn: &DatabaseTransaction,
    member_id: i64,
    count: i64,
    now: DateTime<Utc>,
) -> AppResult<(String, i64)> {
    let next = Expr::col((
        blind_box_client_seed::Entity,
        blind_box_client_seed::Column::NextNonce,
    ))
    .add(count);
    let upsert = blind_box_client_seed::Entity::insert(new_client_seed(member_id, count, now))
        .on_conflict(
            OnConflict::column(blind_box_client_seed::Column::MemberId)
                .value(blind_box_client_seed::Column::NextNonce, next)
                .to_owned(),
        );
    // Where the database returns rows (PostgreSQL), the upsert gives the row back; else it is read.
    let row = if txn.support_returning() {
        upsert.exec_with_returning(txn).await?
    } else {
        upsert.exec_without_returning(txn).await?;
        find_client_seed(txn, member_id)
            .await?
            .ok_or_else(|| AppError::internal("client seed vanished"))?
    };
    Ok((row.client_seed, row.next_nonce - count))
}

/// Moves the box's nonce counter on by `count` (taking its row lock) and returns the box as it
/// is now, from the update itself where the database can.
async fn take_box_nonces(
    txn: &DatabaseTransaction,
    box_id: i64,
    count: i64,
) -> AppResult<blind_box::Model> {
    let update = blind_box::Entity::update_many()
        .col_expr(
            blind_box::Column::NextNonce,
            Expr::col(blind_box::Column::NextNonce).add(count),
        )
        .filter(blind_box::Column::Id.eq(box_id));
    if txn.support_returning() {
        return update
            .exec_with_returning(txn)
            .await?
            .into_iter()
            .next()
            .ok_or(AppError::NotFound("blind box"));
    }
    update.exec(txn).await?;
    find(txn, box_id)
        .await?
        .ok_or(AppError::NotFound("blind box"))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Commits the box to a new server seed over its prize table as it is now, and reveals the seed
/// it replaces, so every draw made with that one can be verified. The caller holds the box's
/// row lock, so no draw uses the old seed after it is revealed.
async fn commit_new_seed(
    txn: &DatabaseTransaction,
    the_box: blind_box::Model,
    now: DateTime<Utc>,
) -> AppResult<blind_box::Model> {
    blind_box_seed::Entity::update_many()
        .col_expr(blind_box_seed::Column::RevealedAt, Expr::value(now))
        .filter(blind_box_seed::Column::Id.eq(the_box.seed_id))
        .filter(blind_box_seed::Column::RevealedAt.is_null())
        .exec(txn)
        .await?;
    let candidates: Vec<Candidate> = prizes(txn, the_box.id)
        .await?
        .iter()
        .map(candidate)
        .collect();
    let table = rules::prize_table(&candidates);
    let seed = random_hex(32);
    let next = blind_box_seed::ActiveModel {
        box_id: Set(the_box.id),
        commitment: Set(rules::commitment(&seed, &table)),
        seed: Set(seed),
        prize_table: Set(Some(table)),
        revealed_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    let mut active: blind_box::ActiveModel = the_box.into();
    active.seed_id = Set(next.id);
    Ok(active.update(txn).await?)
}

pub struct PrizeChange {
    pub name: String,
    pub rarity: String,
    pub kind: String,
    pub weight: i64,
    pub stock: Option<i64>,
    pub payload: String,
}

pub struct BoxChange {
    pub id: Option<i64>,
    pub name: String,
    pub description: String,
    pub points_price: i64,
    pub daily_limit: Option<i32>,
    pub pity_threshold: Option<i32>,
    pub prizes: Vec<PrizeChange>,
    pub active: bool,
}

/// Checks a prize's payload resolves to something that can be given.
async fn check_prize(txn: &DatabaseTransaction, p: &PrizeChange) -> AppResult<(Rarity, PrizeKind)> {
    let bad = |m: &str| AppError::validation("prizes", format!("{}: {m}", p.name));
    let rarity =
        Rarity::parse(&p.rarity).ok_or_else(|| bad("rarity is COMMON, RARE, EPIC or LEGENDARY"))?;
    let kind = PrizeKind::parse(&p.kind)
        .ok_or_else(|| bad("kind is POINTS, COUPON, ITEM, HIDDEN_TASK or TITLE"))?;
    if p.name.trim().is_empty() || p.name.chars().count() > 128 {
        return Err(AppError::validation(
            "prizes",
            "every prize needs a name of 1 to 128 characters",
        ));
    }
    // Bounded so the pool's total weight and any stock arithmetic stay far inside u64/i64.
    if !input::WEIGHT.contains(&p.weight) {
        return Err(bad("weight must be 1 to 1,000,000"));
    }
    if p.stock.is_some_and(|s| !input::STOCK.contains(&s)) {
        return Err(bad("stock must be 0 to 10,000,000"));
    }
    let payload = p.payload.trim();
    match kind {
        PrizeKind::Points => {
            if !payload
                .parse::<i64>()
                .is_ok_and(|n| (1..=1_000_000).contains(&n))
            {
                return Err(bad("a POINTS payload is an amount of 1 to 1,000,000"));
            }
        }
        other => {
            let why = match other {
                PrizeKind::Coupon => "a COUPON payload is its value in yuan",
                PrizeKind::Item => "an ITEM payload is the id of a mall item",
                PrizeKind::HiddenTask => "a HIDDEN_TASK payload is the code of a HIDDEN task",
                _ => "a TITLE payload is the title code of an achievement",
            };
            let resolves = match grant_of(other, &p.name, payload, "") {
                Some(grant) => progress::grant_resolves(txn, &grant).await?,
                None => false,
            };
            if !resolves {
                return Err(bad(why));
            }
        }
    }
    Ok((rarity, kind))
}

/// Creates or edits a box. Editing replaces the prize list; old prizes are retired, so past
/// draws still name what they gave. Either way the box commits to a new seed over its prize
/// table, and an edit reveals the seed it replaces.
#[tracing::instrument(skip_all)]
pub async fn upsert(
    db: &DatabaseConnection,
    c: BoxChange,
    now: DateTime<Utc>,
) -> AppResult<blind_box::Model> {
    let txn = db.begin().await?;
    let saved = upsert_in(&txn, c, now).await?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(saved)
}

/// `upsert` inside the caller's transaction (the demo seed's).
#[tracing::instrument(skip_all)]
pub async fn upsert_in(
    txn: &DatabaseTransaction,
    c: BoxChange,
    now: DateTime<Utc>,
) -> AppResult<blind_box::Model> {
    let name = c.name.trim();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(AppError::validation(
            "name",
            "name must be 1 to 128 characters",
        ));
    }
    // Draws are bought with points, never cash.
    if !(1..=1_000_000).contains(&c.points_price) {
        return Err(AppError::validation(
            "pointsPrice",
            "pointsPrice must be 1 to 1,000,000 points",
        ));
    }
    if let Some(limit) = c.daily_limit {
        input::bounded("dailyLimit", limit.into(), input::COUNT)?;
    }
    if let Some(threshold) = c.pity_threshold {
        input::bounded("pityThreshold", threshold.into(), 2..=100_000)?;
    }
    if c.prizes.is_empty() || c.prizes.len() > 50 {
        return Err(AppError::validation("prizes", "a box has 1 to 50 prizes"));
    }
    if !c.prizes.iter().any(|p| p.stock.is_none()) {
        return Err(AppError::validation(
            "prizes",
            "at least one prize must never run out (no stock limit)",
        ));
    }
    let mut checked = Vec::new();
    for p in &c.prizes {
        checked.push(check_prize(txn, p).await?);
    }
    let saved = match c.id {
        Some(id) => {
            let existing = find(txn, id)
                .await?
                .ok_or(AppError::NotFound("blind box"))?;
            let mut active: blind_box::ActiveModel = existing.into();
            active.name = Set(name.to_string());
            active.description = Set(c.description.trim().to_string());
            active.points_price = Set(c.points_price);
            active.daily_limit = Set(c.daily_limit);
            active.pity_threshold = Set(c.pity_threshold);
            active.active = Set(c.active);
            active.updated_at = Set(now);
            let saved = active.update(txn).await?;
            blind_box_prize::Entity::update_many()
                .col_expr(blind_box_prize::Column::Retired, Expr::value(true))
                .filter(blind_box_prize::Column::BoxId.eq(saved.id))
                .exec(txn)
                .await?;
            saved
        }
        // The seed comes after the prizes: it commits to them.
        None => {
            blind_box::ActiveModel {
                name: Set(name.to_string()),
                description: Set(c.description.trim().to_string()),
                points_price: Set(c.points_price),
                daily_limit: Set(c.daily_limit),
                pity_threshold: Set(c.pity_threshold),
                active: Set(c.active),
                seed_id: Set(0),
                next_nonce: Set(0),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(txn)
            .await?
        }
    };
    for (position, (p, (rarity, kind))) in c.prizes.iter().zip(checked).enumerate() {
        blind_box_prize::ActiveModel {
            box_id: Set(saved.id),
            position: Set(position as i32),
            name: Set(p.name.trim().to_string()),
            rarity: Set(rarity),
            kind: Set(kind),
            weight: Set(p.weight),
            stock: Set(p.stock),
            payload: Set(p.payload.trim().to_string()),
            retired: Set(false),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    // A new box commits to its first seed; an edited one to a new seed over its new prizes,
    // revealing the old seed (the edit's update holds the box's row lock).
    commit_new_seed(txn, saved, now).await
}

/// Reveals the box's current seed (so every draw made with it can be verified) and commits to
/// a new one.
#[tracing::instrument(skip_all)]
pub async fn rotate_seed(
    db: &DatabaseConnection,
    box_id: i64,
    now: DateTime<Utc>,
) -> AppResult<blind_box::Model> {
    let txn = db.begin().await?;
    let current = lock_box(&txn, box_id, now).await?;
    let saved = commit_new_seed(&txn, current, now).await?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(saved)
}

/// Takes the box's row lock (so no draw uses its seed meanwhile) and reads it.
async fn lock_box(
    txn: &DatabaseTransaction,
    box_id: i64,
    now: DateTime<Utc>,
) -> AppResult<blind_box::Model> {
    let locked = blind_box::Entity::update_many()
        .col_expr(blind_box::Column::UpdatedAt, Expr::value(now))
        .filter(blind_box::Column::Id.eq(box_id))
        .exec(txn)
        .await?;
    if locked.rows_affected != 1 {
        return Err(AppError::NotFound("blind box"));
    }
    find(txn, box_id)
        .await?
        .ok_or(AppError::NotFound("blind box"))
}

/// The scheduled rotation (job ROTATE_BLIND_BOX_SEEDS): every box whose seed is older than
/// `rotation`, or was committed without a prize table, reveals it and commits to a new one.
/// One transaction per box. Returns how many rotated.
#[tracing::instrument(skip_all)]
pub async fn rotate_due_seeds(
    db: &DatabaseConnection,
    rotation: Duration,
    now: DateTime<Utc>,
) -> AppResult<u64> {
    let boxes = blind_box::Entity::find()
        .order_by_asc(blind_box::Column::Id)
        .all(db)
        .await?;
    if boxes.is_empty() {
        return Ok(0);
    }
    let seeds: std::collections::HashMap<i64, blind_box_seed::Model> =
        blind_box_seed::Entity::find()
            .filter(blind_box_seed::Column::Id.is_in(boxes.iter().map(|b| b.seed_id)))
            .all(db)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
    let due = |s: &blind_box_seed::Model| {
        rules::rotation_due(s.created_at, s.prize_table.is_some(), rotation, now)
    };
    let mut rotated = 0;
    for the_box in boxes {
        if !seeds.get(&the_box.seed_id).is_none_or(due) {
            continue;
        }
        let txn = db.begin().await?;
        let locked = lock_box(&txn, the_box.id, now).await?;
        // Checked again under the lock: a draw or an operator may have rotated it meanwhile.
        if due(&seed(&txn, locked.seed_id).await?) {
            commit_new_seed(&txn, locked, now).await?;
            rotated += 1;
        }
        txn.commit().await?;
        crate::metrics::committed();
    }
    Ok(rotated)
}

#[tracing::instrument(skip_all)]
pub async fn revealed_seeds(db: &impl ConnectionTrait, box_id: i64) -> AppResult<Vec<String>> {
    Ok(blind_box_seed::Entity::find()
        .filter(blind_box_seed::Column::BoxId.eq(box_id))
        .filter(blind_box_seed::Column::RevealedAt.is_not_null())
        .order_by_desc(blind_box_seed::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(|s| s.seed)
        .collect())
}

pub struct DrawOutcome {
    pub draws: Vec<blind_box_draw::Model>,
    pub points_spent: i64,
    pub member: member::Model,
    pub unlocked: Vec<progress::Unlocked>,
}

async fn batch(
    db: &impl ConnectionTrait,
    member_id: i64,
    key: &str,
) -> AppResult<Vec<blind_box_draw::Model>> {
    Ok(blind_box_draw::Entity::find()
        .filter(blind_box_draw::Column::MemberId.eq(member_id))
        .filter(blind_box_draw::Column::BatchKey.eq(key))
        .order_by_asc(blind_box_draw::Column::Id)
        .all(db)
        .await?)
}

/// What a batch of draws stored to answer its retries: its one debit.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DrawBatch {
    ledger_id: i64,
}

/// `drawBlindBox`: `count` draws (1 to 10), all or nothing, in one transaction: the daily limit,
/// one debit for all of them, the member's next `count` nonces, then for each a fair pick (pity
/// when due) keyed by the box's committed seed, the member's client seed and nonce, the prize's
/// stock, the prize itself, the draw record and the pity counter. Idempotent on the key.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn draw(
    db: &DatabaseConnection,
    settings: &Settings,
    member: MemberId,
    box_id: i64,
    count: i64,
    idempotency_key: &str,
    now: DateTime<Utc>,
) -> AppResult<DrawOutcome> {
    let member_id = member.get();
    if !(1..=MAX_DRAWS_PER_REQUEST).contains(&count) {
        return Err(AppError::validation(
            "count",
            format!("count must be 1 to {MAX_DRAWS_PER_REQUEST}"),
        ));
    }
    let request = Request::new(
        member,
        "draw",
        Some(idempotency_key),
        &[&box_id.to_string(), &count.to_string()],
    )?;
    // Names the batch of draws and the prizes it grants.
    let key = &request.scoped_key();
    let work = |txn: DatabaseTransaction| async move {
        let the_box = find(&txn, box_id)
            .await?
            .ok_or(AppError::NotFound("blind box"))?;
        if !the_box.active {
            return Err(AppError::NotAvailable("this blind box is closed".into()));
        }
        if let Some(limit) = the_box.daily_limit {
            let today = business_date(now, settings.timezone);
            let start = today
                .and_time(NaiveTime::MIN)
                .and_local_timezone(settings.timezone)
                .single()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or(now);
            let drawn = blind_box_draw::Entity::find()
                .filter(blind_box_draw::Column::MemberId.eq(member_id))
                .filter(blind_box_draw::Column::BoxId.eq(box_id))
                .filter(blind_box_draw::Column::CreatedAt.gte(start))
                .filter(blind_box_draw::Column::CreatedAt.lt(start + Duration::days(1)))
                .count(&txn)
                .await? as i64;
            if drawn + count > i64::from(limit) {
                return Err(AppError::LimitReached {
                    limit: i64::from(limit),
                    message: format!(
                        "at most {limit} draws of this box a day; {} left today",
                        std::cmp::max(i64::from(limit) - drawn, 0)
                    ),
                });
            }
        }
        let price = the_box.points_price * count;
        let spend =
            Movement::new(member_id, price, LedgerKind::Spend, "blindbox", now).source_id(box_id);
        let (spent, _) = points::debit(&txn, &spend).await?;
        // The member's own rows come before the box's lock, which every draw of the box waits for
        // until this transaction commits. Progress stays after it: achievements it unlocks lock
        // their shared holder counts, which must not be held while queueing for the box.
        let (client_seed, first_member_nonce) =
            take_member_nonces(&txn, member_id, count, now).await?;
        let mut pity = pity_count(&txn, MemberId::new(member_id), box_id).await?;
        // Taking the nonces locks the box: its draws (and their stock) go one transaction at a time.
        let the_box = take_box_nonces(&txn, box_id, count).await?;
        let first_nonce = the_box.next_nonce - count;
        let mut server_seed = seed(&txn, the_box.seed_id).await?;
        if server_seed.prize_table.is_none() {
            // A seed committed before commitments covered the prize table (the rotation job
            // replaces those, at start-up too): never draw with one.
            let rotated = commit_new_seed(&txn, the_box.clone(), now).await?;
            server_seed = seed(&txn, rotated.seed_id).await?;
        }
        let mut prizes = prizes(&txn, box_id).await?;
        let threshold = the_box.pity_threshold.map(i64::from);
        // The picks are made in memory (each sees the stock the earlier ones took); their
        // writes follow in as few statements as the batch allows: one stock update and one
        // credit per prize won, one insert for all the draw rows.
        let mut rows = Vec::with_capacity(count as usize);
        let mut won_by_prize: Vec<(blind_box_prize::Model, i64)> = Vec::new();
        let mut grants = Vec::new();
        for i in 0..count {
            let member_nonce = first_member_nonce + i;
            let candidates: Vec<Candidate> = prizes.iter().map(candidate).collect();
            let (pool, by_pity) = rules::pool_for(&candidates, pity, threshold);
            let won = rules::verify(
                &server_seed.seed,
                &client_seed,
                member_id,
                member_nonce,
                &pool,
            )
            .ok_or_else(|| {
                AppError::NotAvailable("this blind box has nothing left to win".into())
            })?;
            let prize = prizes
                .iter_mut()
                .find(|p| p.id == won)
                .ok_or_else(|| AppError::internal("picked prize vanished"))?;
            if let Some(stock) = prize.stock {
                prize.stock = Some(stock - 1);
            }
            let prize = prize.clone();
            if prize.kind != PrizeKind::Points {
                let grant = grant_of(
                    prize.kind,
                    &prize.name,
                    &prize.payload,
                    &format!("{key}:{i}"),
                )
                .ok_or_else(|| {
                    AppError::internal(format!("prize {} has a bad payload", prize.id))
                })?;
                grants.push(grant);
            }
            let pool_json =
                serde_json::to_string(&pool).map_err(|e| AppError::internal(e.to_string()))?;
            rows.push(blind_box_draw::ActiveModel {
                box_id: Set(box_id),
                member_id: Set(member_id),
                prize_id: Set(prize.id),
                pity: Set(by_pity),
                seed_id: Set(server_seed.id),
                nonce: Set(first_nonce + i),
                member_nonce: Set(Some(member_nonce)),
                client_seed: Set(Some(client_seed.clone())),
                pool: Set(pool_json),
                batch_key: Set(key.to_string()),
                created_at: Set(now),
                ..Default::default()
            });
            pity = rules::pity_after(pity, prize.rarity);
            let rarity = prize.rarity.as_str();
            crate::metrics::on_commit(move || {
                metrics::counter!(crate::metrics::names::DRAWS, "rarity" => rarity).increment(1);
            });
            match won_by_prize.iter_mut().find(|(p, _)| p.id == prize.id) {
                Some((_, n)) => *n += 1,
                None => won_by_prize.push((prize, 1)),
            }
        }
        // In prize id order, like every other writer of prize rows.
        won_by_prize.sort_by_key(|(p, _)| p.id);
        for (prize, n) in &won_by_prize {
            if prize.stock.is_some() {
                take_prize_stock(&txn, prize.id, *n).await?;
            }
            if prize.kind == PrizeKind::Points {
                credit_points_prize(&txn, settings, member_id, prize, *n, now).await?;
            }
        }
        for grant in grants {
            progress::grant(&txn, settings, member_id, grant, now).await?;
        }
        let draws = insert_draws(&txn, member_id, key, rows).await?;
        save_pity(&txn, member_id, box_id, pity).await?;
        let unlocked =
            progress::record(&txn, settings, member_id, &Event::Drew { count }, now).await?;
        let outcome = DrawOutcome {
            draws,
            points_spent: price,
            member: crate::member::require(&txn, member).await?,
            unlocked,
        };
        Ok((
            txn,
            outcome,
            DrawBatch {
                ledger_id: spent.id,
            },
        ))
    };
    let replay = |stored: DrawBatch| async move {
        let spent = points::entry(db, stored.ledger_id).await?;
        Ok(DrawOutcome {
            draws: batch(db, member_id, key).await?,
            points_spent: -spent.delta,
            member: crate::member::require(db, member).await?,
            unlocked: Vec::new(),
        })
    };
    idempotency::run_once(db, &request, now, work, replay).await
}

async fn save_pity(
    txn: &DatabaseTransaction,
    member_id: i64,
    box_id: i64,
    count: i64,
) -> AppResult<()> {
    let updated = blind_box_pity::Entity::update_many()
        .col_expr(blind_box_pity::Column::Count, Expr::value(count))
        .filter(blind_box_pity::Column::MemberId.eq(member_id))
        .filter(blind_box_pity::Column::BoxId.eq(box_id))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        // The member row is locked, so no other draw of this member inserts it meanwhile.
        blind_box_pity::ActiveModel {
            member_id: Set(member_id),
            box_id: Set(box_id),
            count: Set(count),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(())
}

/// What another module gives for a prize of `kind` (every kind but POINTS, which the ledger
/// pays): the grant its handler resolves and gives. `None` for a payload that does not parse.
fn grant_of(kind: PrizeKind, name: &str, payload: &str, key: &str) -> Option<Grant> {
    let payload = payload.trim();
    Some(match kind {
        PrizeKind::Points => return None,
        PrizeKind::Coupon => Grant::Coupon {
            name: name.to_string(),
            value_fen: payload
                .parse::<Decimal>()
                .ok()
                .and_then(|yuan| input::yuan_to_fen("prizes", yuan).ok())?,
            valid_days: COUPON_PRIZE_VALID_DAYS,
            source: "blindbox".into(),
        },
        PrizeKind::Item => Grant::MallItem {
            item_id: payload.parse().ok()?,
            source_key: key.to_string(),
        },
        PrizeKind::HiddenTask => Grant::HiddenTask {
            code: payload.to_string(),
        },
        PrizeKind::Title => Grant::Title {
            code: payload.to_string(),
        },
    })
}

/// Takes `n` units of a prize's stock; the box's row lock makes this a formality, so a miss is
/// a bug, not a sold-out prize.
async fn take_prize_stock(txn: &DatabaseTransaction, prize_id: i64, n: i64) -> AppResult<()> {
    let taken = blind_box_prize::Entity::update_many()
        .col_expr(
            blind_box_prize::Column::Stock,
            Expr::col(blind_box_prize::Column::Stock).sub(n),
        )
        .filter(blind_box_prize::Column::Id.eq(prize_id))
        .filter(blind_box_prize::Column::Stock.gte(n))
        .exec(txn)
        .await?;
    if taken.rows_affected != 1 {
        return Err(AppError::internal(format!(
            "prize {prize_id} stock changed under the box lock"
        )));
    }
    Ok(())
}

/// Pays a POINTS prize won `n` times in one batch: one ledger row for all of them.
async fn credit_points_prize(
    txn: &DatabaseTransaction,
    settings: &Settings,
    member_id: i64,
    prize: &blind_box_prize::Model,
    n: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let amount: i64 = prize
        .payload
        .parse()
        .map_err(|_| AppError::internal("bad POINTS payload"))?;
    let note = if n == 1 {
        prize.name.clone()
    } else {
        format!("{} x{n}", prize.name)
    };
    let win = Movement::new(member_id, amount * n, LedgerKind::Earn, "blindbox", now)
        .source_id(prize.id)
        .note(note);
    points::credit(txn, &win, Expiry::After(settings.points.ttl)).await?;
    Ok(())
}

/// Writes a batch's draw rows in one statement and returns them in draw order: where the database
/// returns rows (PostgreSQL) the insert gives them back, else the batch is read back.
async fn insert_draws(
    txn: &DatabaseTransaction,
    member_id: i64,
    key: &str,
    rows: Vec<blind_box_draw::ActiveModel>,
) -> AppResult<Vec<blind_box_draw::Model>> {
    let insert = blind_box_draw::Entity::insert_many(rows);
    let mut draws = if txn.support_returning() {
        insert.exec_with_returning(txn).await?
    } else {
        insert.exec_without_returning(txn).await?;
        batch(txn, member_id, key).await?
    };
    draws.sort_by_key(|d| d.nonce);
    Ok(draws)
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn draws_of(
    db: &DatabaseConnection,
    member: MemberId,
    page: PageRequest,
) -> AppResult<Vec<blind_box_draw::Model>> {
    let member_id = member.get();
    let mut query = blind_box_draw::Entity::find()
        .filter(blind_box_draw::Column::MemberId.eq(member_id))
        .order_by_desc(blind_box_draw::Column::Id)
        .limit(page.limit + 1);
    if let Some(after) = page.after_id {
        query = query.filter(blind_box_draw::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

/// A box's draws, and per prize: the prize, its configured probability, how often it came up.
pub type Stats = (i64, Vec<(blind_box_prize::Model, f64, i64)>);

/// How often each prize has come up, beside its configured probability.
#[tracing::instrument(skip_all)]
pub async fn stats(db: &impl ConnectionTrait, box_id: i64) -> AppResult<Stats> {
    find(db, box_id)
        .await?
        .ok_or(AppError::NotFound("blind box"))?;
    let won: Vec<i64> = blind_box_draw::Entity::find()
        .select_only()
        .column(blind_box_draw::Column::PrizeId)
        .filter(blind_box_draw::Column::BoxId.eq(box_id))
        .into_tuple()
        .all(db)
        .await?;
    let current = prizes(db, box_id).await?;
    let total_weight: i64 = current.iter().map(|p| p.weight).sum();
    let rows = current
        .into_iter()
        .map(|p| {
            let configured = if total_weight > 0 {
                p.weight as f64 / total_weight as f64
            } else {
                0.0
            };
            let count = won.iter().filter(|id| **id == p.id).count() as i64;
            (p, configured, count)
        })
        .collect();
    Ok((won.len() as i64, rows))
}
