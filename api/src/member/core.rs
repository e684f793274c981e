//! What every module may use of a member: the id that crosses module boundaries, loading one
//! (or NOT_FOUND), and the row lock that serializes a member's points-moving use cases.

use std::fmt;

use entity::member;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};

/// A member's id, as modules pass it to each other (a plain `i64` inside a module's own SQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MemberId(i64);

impl MemberId {
    pub const fn new(id: i64) -> Self {
        MemberId(id)
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl From<MemberId> for sea_orm::Value {
    fn from(id: MemberId) -> Self {
        id.0.into()
    }
}

/// The member, or NOT_FOUND.
pub async fn require(db: &impl ConnectionTrait, id: MemberId) -> AppResult<member::Model> {
    member::Entity::find_by_id(id.get())
        .one(db)
        .await?
        .ok_or(AppError::NotFound("member"))
}

/// The public member numbers of these members, by id (a member that does not exist is absent).
pub async fn member_numbers(
    db: &impl ConnectionTrait,
    ids: &[MemberId],
) -> AppResult<std::collections::HashMap<MemberId, String>> {
    let ids: Vec<i64> = ids.iter().map(|id| id.get()).collect();
    Ok(member::Entity::find()
        .filter(member::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (MemberId(m.id), m.member_no))
        .collect())
}

/// Takes a row lock on each member, in id order, for the rest of the transaction: two use cases
/// that touch the same members (a transfer each way) queue instead of deadlocking, and a
/// member's counters (daily caps, per-member limits) are read and written as one step. Every
/// points-moving use case takes it first, through `idempotency::run_once`.
pub async fn lock(db: &impl ConnectionTrait, members: &[MemberId]) -> AppResult<()> {
    let mut ids = members.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        // `points + 0`: an update takes the row lock on every database, SQLite included.
        member::Entity::update_many()
            .col_expr(
                member::Column::Points,
                Expr::col(member::Column::Points).add(0i64),
            )
            .filter(member::Column::Id.eq(id))
            .exec(db)
            .await?;
    }
    Ok(())
}
