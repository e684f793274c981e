//! A realistic shop for the load benchmark: thousands of members with points ledgers, tiers and
//! check-in history, a full mall, blind boxes, tasks and achievements.
//!
//! Catalog rows go through the same use cases an operator's would. Members are written in bulk
//! (one statement per few hundred rows), but every row is one the use cases could have written:
//! each credit has its ledger row and lot, the cached balance is the ledger sum, check-ins carry
//! their metrics, and tiers follow a growth ledger. `ledgerAudit` passes on a freshly seeded shop.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use entity::{checkin, growth_ledger, member, member_metric, points_ledger, points_lot};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, TransactionTrait,
};

use api::clock::business_date;
use api::config::Settings;
use api::error::{AppError, AppResult};
use api::member::{
    self as members,
    rules::tier::{self as tier_rules, TierRule},
};
use api::points::LedgerKind;
use api::{achievement, blindbox, mall, task};

/// How big a shop to build.
#[derive(Debug, Clone)]
pub struct ShopSize {
    pub members: usize,
    pub mall_items: usize,
    /// Days of check-in history before `now`, at most; members have between 1 and this many.
    pub history_days: usize,
    /// Points each member starts with (on top of their check-in history).
    pub starting_points: i64,
    /// Stock of the flash-sale item (the last mall item).
    pub flash_stock: i64,
    /// Member i's openid is this followed by i. The mock WeChat login signs in `mock_<code>`,
    /// so with `mock_` here member i can also sign in through `login` (the soak does).
    pub openid_prefix: String,
}

impl Default for ShopSize {
    fn default() -> Self {
        ShopSize {
            members: 10_000,
            mall_items: 200,
            history_days: 7,
            starting_points: 200_000,
            flash_stock: 100,
            openid_prefix: "bench_".into(),
        }
    }
}

/// What the benchmark needs to know about the shop it got.
#[derive(Debug, Clone)]
pub struct Shop {
    /// Member ids, in creation order.
    pub member_ids: Vec<i64>,
    pub item_ids: Vec<i64>,
    pub flash_item_id: i64,
    /// (box id, points price)
    pub boxes: Vec<(i64, i64)>,
}

const CHUNK: usize = 400;

/// A credit read back for its lot: (ledger id, member, amount, expires at, created at).
type CreditRow = (i64, i64, i64, Option<DateTime<Utc>>, DateTime<Utc>);
const CHECKIN_POINTS: i64 = 5;

/// Builds the shop in an empty database (no members yet), as of `now`.
pub async fn seed_shop(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
    size: &ShopSize,
) -> AppResult<Shop> {
    if member::Entity::find().count(db).await? > 0 {
        return Err(AppError::Conflict(
            "the benchmark shop is seeded into an empty database only".into(),
        ));
    }
    let catalog = seed_catalog(db, now, size).await?;
    let today = business_date(now, settings.timezone);
    let mut member_ids = Vec::with_capacity(size.members);
    for start in (0..size.members).step_by(CHUNK) {
        let end = (start + CHUNK).min(size.members);
        let txn = db.begin().await?;
        member_ids.extend(seed_members(&txn, settings, now, today, size, start..end).await?);
        txn.commit().await?;
    }
    // Members hold what their history earned, as they would in a shop that has run for a while.
    achievement::backfill(db, settings, now).await?;
    Ok(Shop {
        member_ids,
        ..catalog
    })
}

async fn seed_catalog(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
    size: &ShopSize,
) -> AppResult<Shop> {
    let txn = db.begin().await?;
    // 20 tasks: daily browsing and sharing at several targets, weekly check-ins, growth and
    // challenge tasks, so `reportEvent` and `checkIn` have progress to move.
    let mut tasks = Vec::new();
    for target in [1, 3, 5, 10, 20] {
        tasks.push(("DAILY", "browse_item", target, 2 * target));
    }
    for target in [1, 2, 3, 5] {
        tasks.push(("DAILY", "share", target, 5 * target));
    }
    for target in [2, 3, 5, 7] {
        tasks.push(("WEEKLY", "checkin", target, 10 * target));
    }
    for (event, target) in [
        ("checkin", 30),
        ("draw", 10),
        ("redeem", 3),
        ("purchase", 1),
    ] {
        tasks.push(("GROWTH", event, target, 50));
    }
    for (event, target) in [("invite", 3), ("draw", 50), ("checkin", 100)] {
        tasks.push(("CHALLENGE", event, target, 200));
    }
    for (i, (kind, event, target, reward)) in tasks.into_iter().enumerate() {
        task::upsert(
            &txn,
            task::TaskChange {
                id: None,
                code: format!("bench_{}_{event}_{target}", kind.to_ascii_lowercase()),
                name: format!("任务{}", i + 1),
                description: format!("{event} x{target}"),
                kind: kind.into(),
                event: event.into(),
                target,
                reward_points: reward,
                active: true,
                min_tier_rank: None,
                audience_segment: None,
            },
            now,
        )
        .await?;
    }

    let categories = ["milk_powder", "supplies", "gear", "toys", "coupon"];
    let mut item_ids = Vec::with_capacity(size.mall_items);
    for i in 0..size.mall_items {
        let flash = i + 1 == size.mall_items;
        let category = categories[i % categories.len()];
        let item = mall::ItemChange {
            id: None,
            name: if flash {
                "秒杀：限量奶瓶".to_string()
            } else {
                format!("商品{:03}", i + 1)
            },
            description: String::new(),
            category: category.into(),
            kind: if category == "coupon" {
                "COUPON"
            } else {
                "PHYSICAL"
            }
            .into(),
            points_price: if flash {
                100
            } else {
                100 + 50 * (i as i64 % 40)
            },
            cash_price: None,
            stock: if flash { size.flash_stock } else { 100_000 },
            per_member_limit: Some(if flash { 1 } else { 5 }),
            min_tier_rank: 0,
            starts_at: None,
            ends_at: None,
            coupon_value: (category == "coupon").then(|| rust_decimal::Decimal::from(10)),
            coupon_threshold: (category == "coupon").then(|| rust_decimal::Decimal::from(100)),
            coupon_valid_days: (category == "coupon").then_some(30),
            crowdfundable: false,
            active: true,
        };
        item_ids.push(mall::upsert_item(&txn, item, now).await?.id);
    }
    let flash_item_id = *item_ids
        .last()
        .ok_or_else(|| AppError::validation("mall_items", "the shop needs at least one item"))?;

    let prize =
        |name: &str, rarity: &str, kind: &str, weight: i64, stock: Option<i64>, payload: &str| {
            blindbox::PrizeChange {
                name: name.into(),
                rarity: rarity.into(),
                kind: kind.into(),
                weight,
                stock,
                payload: payload.into(),
            }
        };
    let mut boxes = Vec::new();
    for (name, price) in [("萌宠盲盒", 50), ("星座盲盒", 100), ("限定盲盒", 200)] {
        let b = blindbox::upsert_in(
            &txn,
            blindbox::BoxChange {
                id: None,
                name: name.into(),
                description: "10抽内必得稀有及以上奖品".into(),
                points_price: price,
                daily_limit: Some(100),
                pity_threshold: Some(10),
                prizes: vec![
                    prize("10积分", "COMMON", "POINTS", 600, None, "10"),
                    prize("30积分", "COMMON", "POINTS", 250, None, "30"),
                    prize("5元无门槛券", "RARE", "COUPON", 100, None, "5.00"),
                    prize("200积分", "EPIC", "POINTS", 45, Some(100_000), "200"),
                    prize("1000积分", "LEGENDARY", "POINTS", 5, Some(1_000), "1000"),
                ],
                active: true,
            },
            now,
        )
        .await?;
        boxes.push((b.id, price));
    }

    let metrics = [
        ("checkin.total", [1, 7, 30, 100]),
        ("checkin.streak", [3, 7, 14, 30]),
        ("blindbox.draws", [1, 10, 50, 100]),
        ("mall.redemptions", [1, 5, 10, 20]),
        ("points.earned", [100, 1_000, 10_000, 100_000]),
    ];
    for (metric, thresholds) in metrics {
        for (level, threshold) in thresholds.into_iter().enumerate() {
            let code = format!("{}_{threshold}", metric.replace('.', "_"));
            let titled = level == 3;
            achievement::upsert(
                &txn,
                achievement::AchievementChange {
                    code: code.clone(),
                    name: format!("{metric} {threshold}"),
                    description: format!("{metric} reaches {threshold}"),
                    category: metric.split('.').next().unwrap_or("misc").into(),
                    icon_url: None,
                    metric: metric.into(),
                    threshold,
                    reward_points: 10 * (level as i64 + 1),
                    title_code: titled.then(|| format!("title_{code}")),
                    title_name: titled.then(|| format!("{metric}达人")),
                    hidden: level == 3 && metric == "blindbox.draws",
                },
                now,
            )
            .await?;
        }
    }
    txn.commit().await?;
    Ok(Shop {
        member_ids: Vec::new(),
        item_ids,
        flash_item_id,
        boxes,
    })
}

/// Members `range` of the shop: member rows, then their ledgers, lots, check-ins, metrics and
/// growth, with the cached balance and tier matching what the ledgers say.
async fn seed_members(
    txn: &impl ConnectionTrait,
    settings: &Settings,
    now: DateTime<Utc>,
    today: NaiveDate,
    size: &ShopSize,
    range: std::ops::Range<usize>,
) -> AppResult<Vec<i64>> {
    let days_of = |i: usize| 1 + i % size.history_days.max(1);
    let growth_of = |i: usize| [0, 300, 1_500, 6_000, 25_000][i % 5];
    // The tier the growth earns on the shop's own ladder, as a tier upgrade would pick it.
    let ladder: Vec<TierRule> = members::tier_ladder(txn)
        .await?
        .iter()
        .map(members::Tier::rule)
        .collect();
    let tier_of =
        |growth: i64| tier_rules::tier_for(growth, &ladder).map(|t| (t.code.clone(), t.rank));
    let rows = range.clone().map(|i| {
        let growth = growth_of(i);
        let days = days_of(i) as i64;
        member::ActiveModel {
            member_no: Set(format!("B{i:07}")),
            openid: Set(format!("{}{i}", size.openid_prefix)),
            unionid: Set(None),
            wechat_session_key: Set(None),
            nickname: Set(format!("会员{i}")),
            avatar_url: Set(None),
            birthday: Set(None),
            invite_code: Set(format!("BI{i:07}")),
            invited_by: Set(None),
            last_active_at: Set(Some(now - Duration::days(1))),
            points: Set(size.starting_points + CHECKIN_POINTS * days),
            blacklisted_at: Set(None),
            blacklist_reason: Set(None),
            blacklisted_by: Set(None),
            growth_value: Set(growth),
            tier_code: Set(tier_of(growth).map(|(code, _)| code)),
            tier_valid_until: Set(tier_of(growth)
                .filter(|(_, rank)| *rank > 0)
                .map(|_| tier_rules::validity_end(now))),
            last_purchase_at: Set(None),
            rfm_segment: Set(None),
            active_title_code: Set(None),
            showcase: Set(None),
            created_at: Set(now - Duration::days(30)),
            updated_at: Set(now),
            ..Default::default()
        }
    });
    member::Entity::insert_many(rows).exec(txn).await?;
    let openids: Vec<String> = range
        .clone()
        .map(|i| format!("{}{i}", size.openid_prefix))
        .collect();
    let mut ids: Vec<(i64, String)> = member::Entity::find()
        .select_only()
        .columns([member::Column::Id, member::Column::Openid])
        .filter(member::Column::Openid.is_in(openids))
        .into_tuple()
        .all(txn)
        .await?;
    ids.sort_by_key(|(_, openid)| {
        openid
            .trim_start_matches(size.openid_prefix.as_str())
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let members: Vec<(usize, i64)> = range.clone().zip(ids.iter().map(|(id, _)| *id)).collect();
    if members.len() != range.len() {
        return Err(AppError::internal("seeded members could not be read back"));
    }

    // Ledgers: the welcome gift, then one check-in credit per history day, oldest first.
    let ttl = settings.points.ttl;
    let mut ledger = Vec::new();
    let mut checkins = Vec::new();
    let mut metrics = Vec::new();
    let mut growth = Vec::new();
    for &(i, id) in &members {
        let days = days_of(i);
        let start = now - Duration::days(days as i64 + 1);
        let mut balance = size.starting_points;
        ledger.push(ledger_row(
            id,
            size.starting_points,
            balance,
            "bench",
            None,
            start,
            ttl,
        ));
        for d in 0..days {
            let day = today - Duration::days((days - d) as i64);
            let at = now - Duration::days((days - d) as i64);
            balance += CHECKIN_POINTS;
            ledger.push(ledger_row(
                id,
                CHECKIN_POINTS,
                balance,
                "checkin",
                Some(day.to_string()),
                at,
                ttl,
            ));
            checkins.push(checkin::ActiveModel {
                member_id: Set(id),
                day: Set(day),
                made_up: Set(false),
                points: Set(CHECKIN_POINTS),
                streak_bonus: Set(0),
                streak: Set(d as i32 + 1),
                idempotency_key: Set(None),
                created_at: Set(at),
                ..Default::default()
            });
        }
        let earned = size.starting_points + CHECKIN_POINTS * days as i64;
        for (metric, period, value) in [
            ("checkin.total", "all", days as i64),
            ("checkin.streak", "all", days as i64),
            ("points.earned", "all", earned),
        ] {
            metrics.push(member_metric::ActiveModel {
                member_id: Set(id),
                metric: Set(metric.into()),
                period: Set(period.into()),
                value: Set(value),
                updated_at: Set(now - Duration::days(1)),
                ..Default::default()
            });
        }
        let g = growth_of(i);
        if g > 0 {
            growth.push(growth_ledger::ActiveModel {
                member_id: Set(id),
                delta: Set(g),
                source: Set("bench".into()),
                source_id: Set(None),
                created_at: Set(now - Duration::days(30)),
                ..Default::default()
            });
        }
    }
    for chunk in ledger.chunks(CHUNK) {
        points_ledger::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    // One lot per credit, as `points::credit` writes them.
    let (first, last) = (members[0].1, members[members.len() - 1].1);
    let credits: Vec<CreditRow> = points_ledger::Entity::find()
        .select_only()
        .columns([
            points_ledger::Column::Id,
            points_ledger::Column::MemberId,
            points_ledger::Column::Delta,
            points_ledger::Column::ExpiresAt,
            points_ledger::Column::CreatedAt,
        ])
        .filter(points_ledger::Column::MemberId.between(first, last))
        .order_by_asc(points_ledger::Column::Id)
        .into_tuple()
        .all(txn)
        .await?;
    let lots: Vec<points_lot::ActiveModel> = credits
        .into_iter()
        .map(
            |(ledger_id, member_id, amount, expires_at, created_at)| points_lot::ActiveModel {
                member_id: Set(member_id),
                ledger_id: Set(ledger_id),
                amount: Set(amount),
                remaining: Set(amount),
                expires_at: Set(expires_at.unwrap_or(created_at + ttl)),
                expired_at: Set(None),
                created_at: Set(created_at),
                ..Default::default()
            },
        )
        .collect();
    for chunk in lots.chunks(CHUNK) {
        points_lot::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    for chunk in checkins.chunks(CHUNK) {
        checkin::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    for chunk in metrics.chunks(CHUNK) {
        member_metric::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    for chunk in growth.chunks(CHUNK) {
        growth_ledger::Entity::insert_many(chunk.to_vec())
            .exec(txn)
            .await?;
    }
    Ok(members.into_iter().map(|(_, id)| id).collect())
}

fn ledger_row(
    member_id: i64,
    delta: i64,
    balance_after: i64,
    source: &str,
    source_id: Option<String>,
    at: DateTime<Utc>,
    ttl: Duration,
) -> points_ledger::ActiveModel {
    points_ledger::ActiveModel {
        member_id: Set(member_id),
        delta: Set(delta),
        balance_after: Set(balance_after),
        kind: Set(LedgerKind::Earn),
        source: Set(source.into()),
        source_id: Set(source_id),
        note: Set(None),
        idempotency_key: Set(None),
        request_hash: Set(None),
        expires_at: Set(Some(at + ttl)),
        created_at: Set(at),
        ..Default::default()
    }
}
