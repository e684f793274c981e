//! Growth from interactions: points earned by checking in and doing tasks add
//! `GROWTH_INTERACTION_WEIGHT` growth per point, through the progress fan-out.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use sea_orm::DatabaseTransaction;

use super::tier;
use crate::error::AppResult;
use crate::progress::{Event, Progress, ProgressHandler, Unlocked};

pub struct GrowthFromInteraction;

pub static GROWTH_FROM_INTERACTION: GrowthFromInteraction = GrowthFromInteraction;

#[async_trait::async_trait]
impl ProgressHandler for GrowthFromInteraction {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        p: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>> {
        let earned: i64 = p
            .events
            .iter()
            .map(|event| match event {
                Event::PointsEarned {
                    amount,
                    interaction: true,
                } => *amount,
                _ => 0,
            })
            .sum();
        if earned > 0 {
            let growth = (Decimal::from(earned) * p.settings.member.growth_interaction_weight)
                .floor()
                .to_i64()
                .unwrap_or(0);
            tier::add_growth(txn, p.member_id, growth, "interaction", None, p.now).await?;
        }
        Ok(Vec::new())
    }
}
