//! Mall goods and coupons given by other modules (blind-box prizes), through `progress` grants:
//! a paid 0-point order, or a coupon, in the giver's transaction.

use sea_orm::DatabaseTransaction;

use super::catalog;
use super::redeem::{grant_coupon, grant_item};
use crate::error::AppResult;
use crate::member::MemberId;
use crate::progress::{Event, Grant, Progress, ProgressHandler, Unlocked};

pub struct MallPrizes;

/// Registered by the composition root with the other progress handlers.
pub static PRIZES: MallPrizes = MallPrizes;

#[async_trait::async_trait]
impl ProgressHandler for MallPrizes {
    async fn on_progress(
        &self,
        txn: &DatabaseTransaction,
        p: &Progress<'_>,
    ) -> AppResult<Vec<Unlocked>> {
        let member = MemberId::new(p.member_id);
        for event in p.events {
            match event {
                Event::Granted(Grant::MallItem {
                    item_id,
                    source_key,
                }) => grant_item(txn, member, *item_id, source_key, p.now).await?,
                Event::Granted(Grant::Coupon {
                    name,
                    value_fen,
                    valid_days,
                    source,
                }) => {
                    grant_coupon(txn, member, name, *value_fen, *valid_days, source, p.now).await?
                }
                _ => {}
            }
        }
        Ok(Vec::new())
    }

    async fn resolves(&self, txn: &DatabaseTransaction, grant: &Grant) -> AppResult<Option<bool>> {
        Ok(match grant {
            Grant::MallItem { item_id, .. } => Some(catalog::find(txn, *item_id).await?.is_some()),
            Grant::Coupon { value_fen, .. } => Some(*value_fen > 0),
            _ => None,
        })
    }
}
