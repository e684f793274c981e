//! Demo data for a fresh development database, so GraphiQL has something to show at once.
//! Sign in as them with `login(code: "alice")` / `login(code: "bob")`.

use chrono::{DateTime, NaiveDate, Utc};
use entity::member;
use sea_orm::{
    ActiveModelTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Set, TransactionTrait,
};

use crate::error::AppResult;

/// Seeds only an empty database; says whether it did.
pub async fn seed_demo_data(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<bool> {
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
    demo_member(
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
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}
