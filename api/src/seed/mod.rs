//! Demo data for a fresh development database, so GraphiQL has something to show at once.
//! Sign in as them with `login(code: "alice")` / `login(code: "bob")`.
//!
//! Part of the composition root: it may call any module to create demo data.

use chrono::{DateTime, NaiveDate, Utc};
use entity::member;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Set, TransactionTrait,
};

use crate::config::Settings;
use crate::error::AppResult;
use crate::member::{self as members, rules::earning::Earning};
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::task::{self, TaskChange};
use crate::{achievement, blindbox, mall};
use rust_decimal::Decimal;

/// Seeds only an empty database; says whether it did.
pub async fn seed_demo_data(
    db: &DatabaseConnection,
    settings: &Settings,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let points_ttl = settings.points.ttl;
    if member::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    let txn = db.begin().await?;
    let alice = demo_member(
        "mock_alice",
        "DEMOA001",
        "ALICE1",
        "爱丽丝",
        NaiveDate::from_ymd_opt(1992, 3, 14),
        None,
        now,
    )
    .insert(&txn)
    .await?;
    let bob = demo_member(
        "mock_bob",
        "DEMOB002",
        "BOB002",
        "小博",
        None,
        Some(alice.id),
        now,
    )
    .insert(&txn)
    .await?;
    // Through the ledger, like every other change of points, so the audit holds from day one.
    for (member_id, amount) in [(alice.id, 1280), (bob.id, 300)] {
        let gift =
            Movement::new(member_id, amount, LedgerKind::Earn, "demo", now).note("welcome gift");
        points::credit(&txn, &gift, Expiry::After(points_ttl)).await?;
    }
    // Purchase points by category, from the product research: milk powder earns triple.
    let rules = Earning {
        points_per_yuan: settings.member.points_per_yuan,
        category_multipliers: vec![
            ("milk_powder".into(), Decimal::from(3)),
            ("supplies".into(), Decimal::ONE),
        ],
        double_points_days: Vec::new(),
        max_points_ratio: settings.member.max_points_ratio,
    };
    members::update_earning_rules(&txn, rules, now).await?;
    // Tasks. Sharing is rewarded per share only as a switch-off-able demo; the challenge rewards
    // friends who actually join (single level), as mini-program rules prefer.
    let demo_tasks = [
        (
            "daily_browse",
            "逛一逛",
            "浏览3件商品",
            "DAILY",
            "browse_item",
            3,
            5,
        ),
        (
            "daily_share",
            "分享好物",
            "分享1次商品",
            "DAILY",
            "share",
            1,
            10,
        ),
        (
            "weekly_checkin",
            "本周签到5天",
            "一周内签到5天",
            "WEEKLY",
            "checkin",
            5,
            30,
        ),
        (
            "first_purchase",
            "首次购物",
            "完成第一笔订单",
            "GROWTH",
            "purchase",
            1,
            100,
        ),
        (
            "spend_1000",
            "累计消费1000元",
            "累计消费满1000元",
            "GROWTH",
            "spend",
            1000,
            200,
        ),
        (
            "invite_3",
            "邀请3位好友",
            "3位好友通过你的邀请码加入",
            "CHALLENGE",
            "invite",
            3,
            300,
        ),
        (
            "lucky_draw",
            "幸运隐藏任务",
            "抽一次盲盒",
            "HIDDEN",
            "draw",
            1,
            50,
        ),
    ];
    for (code, name, description, kind, event, target, reward) in demo_tasks {
        let change = TaskChange {
            id: None,
            code: code.into(),
            name: name.into(),
            description: description.into(),
            kind: kind.into(),
            event: event.into(),
            target,
            reward_points: reward,
            active: true,
            min_tier_rank: None,
            audience_segment: None,
        };
        task::upsert(&txn, change, now).await?;
    }
    // A small mall: goods, a coupon, a points+cash item, a privilege for Silver and up, an item
    // friends can crowdfund, and a cause to donate to.
    let demo_items = [
        (
            "婴儿湿巾 80抽",
            "supplies",
            "PHYSICAL",
            200,
            None,
            100,
            None,
            0,
            false,
        ),
        (
            "满100减20券",
            "coupon",
            "COUPON",
            300,
            None,
            500,
            Some(Decimal::from(20)),
            0,
            false,
        ),
        (
            "儿童安全座椅",
            "gear",
            "PHYSICAL",
            0,
            Some(Decimal::from(599)),
            10,
            None,
            0,
            false,
        ),
        (
            "育儿专家一对一咨询",
            "privilege",
            "PRIVILEGE",
            800,
            None,
            20,
            None,
            1,
            false,
        ),
        (
            "高景观婴儿推车",
            "gear",
            "PHYSICAL",
            5000,
            None,
            3,
            None,
            0,
            true,
        ),
    ];
    for (
        name,
        category,
        kind,
        points_price,
        cash_price,
        stock,
        coupon_value,
        min_tier_rank,
        crowdfundable,
    ) in demo_items
    {
        let item = mall::ItemChange {
            id: None,
            name: name.into(),
            description: String::new(),
            category: category.into(),
            kind: kind.into(),
            points_price,
            cash_price,
            stock,
            per_member_limit: Some(5),
            min_tier_rank,
            starts_at: None,
            ends_at: None,
            coupon_value,
            coupon_threshold: coupon_value.map(|_| Decimal::from(100)),
            coupon_valid_days: coupon_value.map(|_| 30),
            crowdfundable,
            active: true,
        };
        mall::upsert_item(&txn, item, now).await?;
    }
    // A blind box that follows the 2023 SAMR guideline: odds disclosed, a pity guarantee,
    // a daily limit, bought with points only.
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
    let demo_box = blindbox::BoxChange {
        id: None,
        name: "萌宠盲盒".into(),
        description: "10抽内必得稀有及以上奖品".into(),
        points_price: 50,
        daily_limit: Some(20),
        pity_threshold: Some(10),
        prizes: vec![
            prize("10积分", "COMMON", "POINTS", 600, None, "10"),
            prize("30积分", "COMMON", "POINTS", 250, None, "30"),
            prize("5元无门槛券", "RARE", "COUPON", 100, Some(200), "5.00"),
            prize("200积分", "EPIC", "POINTS", 45, Some(50), "200"),
            prize("婴儿湿巾 80抽", "LEGENDARY", "ITEM", 5, Some(5), "1"),
        ],
        active: true,
    };
    blindbox::upsert_in(&txn, demo_box, now).await?;
    // The classic wall badges; titles for the rarer ones.
    let demo_achievements = [
        (
            "streak_7",
            "连续签到7天",
            "checkin",
            "checkin.streak",
            7,
            20,
            None,
        ),
        (
            "streak_30",
            "连续签到30天",
            "checkin",
            "checkin.streak",
            30,
            100,
            Some(("persistent", "坚持之星")),
        ),
        (
            "first_purchase",
            "首次购物",
            "shopping",
            "purchase.count",
            1,
            10,
            None,
        ),
        (
            "first_redemption",
            "首次兑换",
            "mall",
            "mall.redemptions",
            1,
            10,
            None,
        ),
        (
            "draws_100",
            "抽盲盒100次",
            "blindbox",
            "blindbox.draws",
            100,
            50,
            Some(("collector", "盲盒收藏家")),
        ),
        (
            "invite_10",
            "邀请10位好友",
            "social",
            "invite.count",
            10,
            200,
            Some(("ambassador", "推广大使")),
        ),
    ];
    for (code, name, category, metric, threshold, reward, title) in demo_achievements {
        let change = achievement::AchievementChange {
            code: code.into(),
            name: name.into(),
            description: name.into(),
            category: category.into(),
            icon_url: None,
            metric: metric.into(),
            threshold,
            reward_points: reward,
            title_code: title.map(|t: (&str, &str)| t.0.to_string()),
            title_name: title.map(|t| t.1.to_string()),
            hidden: false,
        };
        achievement::upsert(&txn, change, now).await?;
    }
    mall::upsert_donation_project(
        &txn,
        None,
        "山区儿童图书角",
        "每100积分为山区孩子捐一本书",
        100_000,
        true,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

fn demo_member(
    openid: &str,
    member_no: &str,
    invite_code: &str,
    nickname: &str,
    birthday: Option<NaiveDate>,
    invited_by: Option<i64>,
    now: DateTime<Utc>,
) -> member::ActiveModel {
    member::ActiveModel {
        member_no: Set(member_no.into()),
        openid: Set(openid.into()),
        unionid: Set(None),
        wechat_session_key: Set(None),
        nickname: Set(nickname.into()),
        avatar_url: Set(None),
        birthday: Set(birthday),
        invite_code: Set(invite_code.into()),
        invited_by: Set(invited_by),
        last_active_at: Set(None),
        points: Set(0),
        blacklisted_at: Set(None),
        blacklist_reason: Set(None),
        blacklisted_by: Set(None),
        active_title_code: Set(None),
        showcase: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}
