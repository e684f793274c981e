//! Single-level invites: a friend's first login with a member's invite code rewards the inviter
//! once, through the ledger, and tells `progress` (invite tasks and achievements count it).

use chrono::{DateTime, Utc};
use entity::member;
use sea_orm::{DatabaseTransaction, EntityTrait};

use crate::config::Settings;
use crate::error::AppResult;
use crate::points::{self, Expiry, LedgerKind, Movement};
use crate::progress::{self, Event};

/// A friend joined with the inviter's code (at their first login): the inviter earns the invite
/// reward once per friend, and challenge tasks count it. Single level: only the direct inviter.
#[tracing::instrument(skip_all)]
pub async fn invite_joined(
    txn: &DatabaseTransaction,
    settings: &Settings,
    inviter_id: i64,
    invitee_id: i64,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let inviter = member::Entity::find_by_id(inviter_id).one(txn).await?;
    let Some(inviter) = inviter.filter(|m| m.blacklisted_at.is_none()) else {
        return Ok(());
    };
    if settings.tasks.invite_reward_points > 0 {
        let reward = Movement::new(
            inviter.id,
            settings.tasks.invite_reward_points,
            LedgerKind::Earn,
            "invite",
            now,
        )
        .source_id(invitee_id)
        .once(format!("invite:{invitee_id}"));
        points::credit(txn, &reward, Expiry::After(settings.points.ttl)).await?;
        let earned = Event::PointsEarned {
            amount: settings.tasks.invite_reward_points,
            interaction: true,
        };
        progress::record(txn, settings, inviter.id, &earned, now).await?;
    }
    progress::record(txn, settings, inviter.id, &Event::InviteJoined, now).await?;
    Ok(())
}
