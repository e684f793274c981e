//! Member use cases: creating a member at first login, reading and editing the profile.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use entity::member;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, Set, TransactionTrait,
};

use super::rules;
use crate::auth::wechat::WeChatSession;
use crate::clock::business_date;
use crate::error::{AppError, AppResult};
use crate::member::MemberId;

#[tracing::instrument(skip_all)]
pub async fn find(db: &impl ConnectionTrait, id: i64) -> AppResult<Option<member::Model>> {
    Ok(member::Entity::find_by_id(id).one(db).await?)
}

/// A page of members, newest first, for operators; `search` matches a memberNo or openid
/// exactly, or part of a nickname. Returns one row more than the page when there is a next page.
#[tracing::instrument(skip_all)]
pub async fn search(
    db: &impl ConnectionTrait,
    search: Option<&str>,
    page: crate::pagination::PageRequest,
) -> AppResult<Vec<member::Model>> {
    use sea_orm::{Condition, QueryOrder, QuerySelect};
    let mut query = member::Entity::find()
        .order_by_desc(member::Column::Id)
        .limit(page.limit + 1);
    if let Some(search) = search.map(str::trim).filter(|s| !s.is_empty()) {
        query = query.filter(
            Condition::any()
                .add(member::Column::MemberNo.eq(search.to_ascii_uppercase()))
                .add(member::Column::Openid.eq(search))
                .add(member::Column::Nickname.contains(search)),
        );
    }
    if let Some(after) = page.after_id {
        query = query.filter(member::Column::Id.lt(after));
    }
    Ok(query.all(db).await?)
}

/// Finds the member by openid, or creates one with fresh public codes. Runs inside the caller's
/// transaction; a lost race with a concurrent first login of the same openid, or a clash of
/// random codes, is retried in a savepoint.
#[tracing::instrument(skip_all)]
pub async fn upsert_on_login(
    txn: &DatabaseTransaction,
    session: &WeChatSession,
    invite_code: Option<&str>,
    now: DateTime<Utc>,
) -> AppResult<(member::Model, bool)> {
    for _ in 0..5 {
        if let Some(existing) = member::Entity::find()
            .filter(member::Column::Openid.eq(&session.openid))
            .one(txn)
            .await?
        {
            let mut active: member::ActiveModel = existing.into();
            active.wechat_session_key = Set(session.session_key.clone());
            if session.unionid.is_some() {
                active.unionid = Set(session.unionid.clone());
            }
            active.last_active_at = Set(Some(now));
            active.updated_at = Set(now);
            return Ok((active.update(txn).await?, false));
        }

        let inviter = match invite_code.map(rules::normalize_code) {
            Some(code) if !code.is_empty() => member::Entity::find()
                .filter(member::Column::InviteCode.eq(code))
                .one(txn)
                .await?
                .map(|m| m.id),
            _ => None,
        };
        let (member_no, own_invite_code) = {
            let mut rng = rand::rng();
            (
                rules::public_code(&mut rng, rules::MEMBER_NO_LEN),
                rules::public_code(&mut rng, rules::INVITE_CODE_LEN),
            )
        };
        let new_member = member::ActiveModel {
            nickname: Set(rules::default_nickname(&member_no)),
            member_no: Set(member_no),
            openid: Set(session.openid.clone()),
            unionid: Set(session.unionid.clone()),
            wechat_session_key: Set(session.session_key.clone()),
            avatar_url: Set(None),
            birthday: Set(None),
            invite_code: Set(own_invite_code),
            invited_by: Set(inviter),
            last_active_at: Set(Some(now)),
            points: Set(0),
            blacklisted_at: Set(None),
            blacklist_reason: Set(None),
            blacklisted_by: Set(None),
            active_title_code: Set(None),
            showcase: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        let savepoint = txn.begin().await?;
        match new_member.insert(&savepoint).await {
            Ok(created) => {
                savepoint.commit().await?;
                return Ok((created, true));
            }
            Err(e) if AppError::is_unique_violation(&e) => savepoint.rollback().await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::internal(
        "could not create a member after 5 attempts",
    ))
}

/// A profile edit; `None` leaves a field as it is. `avatar_url: Some(None)` removes the avatar.
#[derive(Debug, Default)]
pub struct ProfileChange {
    pub nickname: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub birthday: Option<NaiveDate>,
}

#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn update_profile(
    db: &DatabaseConnection,
    member: MemberId,
    change: ProfileChange,
    now: DateTime<Utc>,
    tz: FixedOffset,
) -> AppResult<member::Model> {
    let member_id = member.get();
    // Validate everything before writing anything.
    let nickname = change
        .nickname
        .as_deref()
        .map(rules::nickname)
        .transpose()?;
    let avatar_url = match change.avatar_url {
        Some(Some(url)) => Some(Some(rules::avatar_url(&url)?)),
        other => other,
    };
    let txn = db.begin().await?;
    let current = member::Entity::find_by_id(member_id)
        .one(&txn)
        .await?
        .ok_or_else(|| AppError::unauthenticated("member not found"))?;
    let birthday = match change.birthday {
        Some(day) => rules::birthday(day, current.birthday, business_date(now, tz))?,
        None => None,
    };
    if nickname.is_none() && avatar_url.is_none() && birthday.is_none() {
        return Ok(current);
    }
    let mut active: member::ActiveModel = current.into();
    if let Some(nickname) = nickname {
        active.nickname = Set(nickname);
    }
    if let Some(avatar_url) = avatar_url {
        active.avatar_url = Set(avatar_url);
    }
    if let Some(birthday) = birthday {
        active.birthday = Set(Some(birthday));
    }
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    crate::metrics::committed();
    Ok(updated)
}

/// Marks the member blacklisted, with why and by whom; false if they already were. Run inside
/// the blacklisting's transaction, so the row stays locked until its points are revoked.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn mark_blacklisted(
    db: &impl ConnectionTrait,
    member: MemberId,
    reason: &str,
    by: &str,
    now: DateTime<Utc>,
) -> AppResult<bool> {
    let listed = member::Entity::update_many()
        .col_expr(member::Column::BlacklistedAt, Expr::value(now))
        .col_expr(member::Column::BlacklistReason, Expr::value(reason))
        .col_expr(member::Column::BlacklistedBy, Expr::value(by))
        .filter(member::Column::Id.eq(member))
        .filter(member::Column::BlacklistedAt.is_null())
        .exec(db)
        .await?;
    Ok(listed.rows_affected == 1)
}

/// Lifts a blacklisting (revoked points stay revoked).
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn clear_blacklist(
    db: &impl ConnectionTrait,
    member: MemberId,
    now: DateTime<Utc>,
) -> AppResult<()> {
    member::Entity::update_many()
        .col_expr(
            member::Column::BlacklistedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            member::Column::BlacklistReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            member::Column::BlacklistedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(member::Column::UpdatedAt, Expr::value(now))
        .filter(member::Column::Id.eq(member))
        .exec(db)
        .await?;
    Ok(())
}

/// The achievements pinned on the member's wall, as the JSON list of their codes.
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn set_showcase(
    db: &impl ConnectionTrait,
    member: MemberId,
    codes_json: &str,
) -> AppResult<()> {
    member::Entity::update_many()
        .col_expr(member::Column::Showcase, Expr::value(codes_json))
        .filter(member::Column::Id.eq(member))
        .exec(db)
        .await?;
    Ok(())
}

/// The title the member wears (`None`: none).
#[tracing::instrument(skip_all, fields(member = %member))]
pub async fn set_active_title(
    db: &impl ConnectionTrait,
    member: MemberId,
    code: Option<&str>,
) -> AppResult<()> {
    member::Entity::update_many()
        .col_expr(
            member::Column::ActiveTitleCode,
            Expr::value(code.map(str::to_string)),
        )
        .filter(member::Column::Id.eq(member))
        .exec(db)
        .await?;
    Ok(())
}
