//! Pure rules of the points mall: campaign prices, the points+cash deduction ladder, quotes,
//! order states and coupon states. Money is in fen (1/100 yuan) here, exact integers.

use async_graphql::Enum;
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

pub const MAX_QUANTITY: i64 = 100;

pub use entity::crowdfund::CrowdfundStatus;
pub use entity::mall_item::MallItemKind;
pub use entity::mall_order::{OrderOrigin, OrderStatus};

/// An order's status once it is paid: goods wait to be shipped; coupons and privileges are
/// delivered at once.
pub fn status_when_paid(kind: MallItemKind) -> OrderStatus {
    match kind {
        MallItemKind::Physical => OrderStatus::Paid,
        MallItemKind::Coupon | MallItemKind::Privilege => OrderStatus::Completed,
    }
}

/// The statuses from which a member may cancel an order, or why it can never be cancelled.
/// Goods can be cancelled until they leave the warehouse, coupons while unused (the service
/// checks use), a privilege only before it is paid for: once paid it has been delivered.
/// Prizes and crowdfunded orders were not bought by this member's redemption, so there is
/// nothing to give back.
pub fn cancellable_from(
    kind: MallItemKind,
    origin: OrderOrigin,
) -> Result<&'static [OrderStatus], &'static str> {
    match (origin, kind) {
        (OrderOrigin::Prize, _) => Err("a prize cannot be cancelled"),
        (OrderOrigin::Crowdfund, _) => Err("a crowdfunded order cannot be cancelled"),
        (OrderOrigin::Redemption, MallItemKind::Physical) => {
            Ok(&[OrderStatus::PendingPayment, OrderStatus::Paid])
        }
        (OrderOrigin::Redemption, MallItemKind::Coupon) => {
            Ok(&[OrderStatus::PendingPayment, OrderStatus::Completed])
        }
        (OrderOrigin::Redemption, MallItemKind::Privilege) => Ok(&[OrderStatus::PendingPayment]),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum CouponStatus {
    Available,
    Used,
    Expired,
}

pub fn coupon_status(
    used_at: Option<DateTime<Utc>>,
    valid_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> CouponStatus {
    if used_at.is_some() {
        CouponStatus::Used
    } else if valid_until <= now {
        CouponStatus::Expired
    } else {
        CouponStatus::Available
    }
}

/// The points price now: the lowest multiplier of the campaigns running (they do not stack),
/// rounded down, and never below one point for an item that costs points.
pub fn price_now(points_price: i64, running_multipliers: &[Decimal]) -> i64 {
    let Some(lowest) = running_multipliers.iter().min() else {
        return points_price;
    };
    if points_price <= 0 {
        return points_price.max(0);
    }
    Decimal::from(points_price)
        .checked_mul(*lowest)
        .and_then(|p| p.floor().to_i64())
        .unwrap_or(points_price)
        .max(1)
}

/// Deduction ladder: from each threshold (fen of the order's cash value), points may pay up to
/// that share of it. Below the lowest threshold, none.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder(pub Vec<(i64, Decimal)>);

impl Default for Ladder {
    /// From 100 yuan up to 50 %, from 300 yuan up to 80 %.
    fn default() -> Self {
        Ladder(vec![
            (10_000, Decimal::new(5, 1)),
            (30_000, Decimal::new(8, 1)),
        ])
    }
}

impl Ladder {
    pub fn share_for(&self, cash_fen: i64) -> Decimal {
        self.0
            .iter()
            .filter(|(from, _)| cash_fen >= *from)
            .map(|(_, share)| *share)
            .max()
            .unwrap_or(Decimal::ZERO)
    }

    /// `100:0.5,300:0.8` (yuan:share).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut steps = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (yuan, share) = item
                .split_once(':')
                .ok_or_else(|| format!("{item:?} is not yuan:share"))?;
            let yuan: Decimal = yuan
                .trim()
                .parse()
                .map_err(|_| format!("{yuan:?} is not an amount"))?;
            let share: Decimal = share
                .trim()
                .parse()
                .map_err(|_| format!("{share:?} is not a share"))?;
            if yuan < Decimal::ZERO || share < Decimal::ZERO || share > Decimal::ONE {
                return Err(format!(
                    "{item:?}: the amount must be 0 or more and the share 0 to 1"
                ));
            }
            steps.push(((yuan * Decimal::from(100)).to_i64().unwrap_or(0), share));
        }
        Ok(Ladder(steps))
    }
}

/// What one order would cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Points price x quantity, plus the points put toward the cash price.
    pub points_cost: i64,
    pub cash_due_fen: i64,
    /// Most points the ladder allows toward the cash price of this order.
    pub max_deduction: i64,
    /// Points actually put toward the cash price (the request, capped).
    pub deduction: i64,
}

/// A quote: points put toward the cash price are capped by the ladder and by what the balance
/// leaves after the points price. A point is worth `point_value_yuan`; the cash due is rounded
/// down to the fen, so rounding never costs the member.
pub fn quote(
    unit_points: i64,
    unit_cash_fen: i64,
    quantity: i64,
    points_to_use: i64,
    ladder: &Ladder,
    point_value_yuan: Decimal,
    balance: i64,
) -> Option<Quote> {
    // Inputs are bounded where they come in; checked arithmetic makes an order that is somehow
    // still too large a refusal, never a wrapped (negative) cost.
    let cash_fen = unit_cash_fen.checked_mul(quantity)?;
    let points_price = unit_points.checked_mul(quantity)?;
    let fen_per_point = point_value_yuan.checked_mul(Decimal::ONE_HUNDRED)?;
    let max_deduction = if fen_per_point > Decimal::ZERO {
        Decimal::from(cash_fen)
            .checked_mul(ladder.share_for(cash_fen))?
            .checked_div(fen_per_point)?
            .floor()
            .to_i64()?
    } else {
        0
    };
    let deduction = points_to_use
        .clamp(0, max_deduction)
        .min(balance.saturating_sub(points_price).max(0));
    let deducted_fen = Decimal::from(deduction).checked_mul(fen_per_point)?;
    let cash_due_fen = Decimal::from(cash_fen)
        .checked_sub(deducted_fen)?
        .floor()
        .to_i64()?
        .max(0);
    Some(Quote {
        points_cost: points_price.checked_add(deduction)?,
        cash_due_fen,
        max_deduction,
        deduction,
    })
}

pub fn fen_to_yuan(fen: i64) -> Decimal {
    Decimal::new(fen, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_ladder_allows_half_from_100_yuan_and_80_percent_from_300() {
        let ladder = Ladder::default();
        let tenth = d("0.1");
        assert_eq!(
            quote(0, 20_000, 1, 0, &ladder, tenth, 99_999)
                .unwrap()
                .max_deduction,
            1000
        );
        assert_eq!(
            quote(0, 30_000, 1, 0, &ladder, tenth, 99_999)
                .unwrap()
                .max_deduction,
            2400
        );
        assert_eq!(
            quote(0, 5_000, 1, 0, &ladder, tenth, 99_999)
                .unwrap()
                .max_deduction,
            0
        );
        assert_eq!(
            quote(0, 9_999, 1, 0, &ladder, tenth, 99_999)
                .unwrap()
                .max_deduction,
            0
        );
        assert_eq!(
            quote(0, 10_000, 1, 0, &ladder, tenth, 99_999)
                .unwrap()
                .max_deduction,
            500
        );
    }

    #[test]
    fn an_order_too_large_for_the_arithmetic_is_no_quote() {
        let ladder = Ladder::default();
        let tenth = d("0.1");
        assert!(quote((1 << 62) + 1, 0, 2, 0, &ladder, tenth, 0).is_none());
        assert!(quote(0, i64::MAX / 2, 3, 0, &ladder, tenth, 0).is_none());
    }

    #[test]
    fn points_toward_cash_are_capped_by_the_ladder_and_the_balance() {
        let ladder = Ladder::default();
        let tenth = d("0.1");
        let q = quote(0, 20_000, 1, 500, &ladder, tenth, 99_999).unwrap();
        assert_eq!((q.points_cost, q.cash_due_fen), (500, 15_000));
        let capped = quote(0, 20_000, 1, 5_000, &ladder, tenth, 99_999).unwrap();
        assert_eq!((capped.deduction, capped.cash_due_fen), (1000, 10_000));
        let poor = quote(100, 20_000, 1, 1_000, &ladder, tenth, 400).unwrap();
        assert_eq!((poor.deduction, poor.points_cost), (300, 400));
        assert_eq!(
            quote(0, 20_000, 1, -5, &ladder, tenth, 99_999)
                .unwrap()
                .deduction,
            0
        );
    }

    #[test]
    fn odd_point_values_round_the_cash_due_down_to_the_fen() {
        // 3 points at 0.015 yuan = 4.5 fen: the member pays 995 fen, not 996.
        let q = quote(
            0,
            1_000,
            1,
            3,
            &Ladder(vec![(0, Decimal::ONE)]),
            d("0.015"),
            100,
        )
        .unwrap();
        assert_eq!(q.cash_due_fen, 995);
    }

    #[test]
    fn campaigns_lower_the_price_without_stacking_and_never_to_zero() {
        assert_eq!(price_now(100, &[]), 100);
        assert_eq!(price_now(100, &[d("0.7")]), 70);
        assert_eq!(price_now(100, &[d("0.7"), d("0.9")]), 70);
        assert_eq!(price_now(1, &[d("0.5")]), 1);
        assert_eq!(price_now(0, &[d("0.5")]), 0);
        assert_eq!(price_now(15, &[d("0.7")]), 10);
    }

    #[test]
    fn orders_move_through_their_states() {
        assert_eq!(status_when_paid(MallItemKind::Physical), OrderStatus::Paid);
        assert_eq!(
            status_when_paid(MallItemKind::Coupon),
            OrderStatus::Completed
        );
    }

    #[test]
    fn goods_cancel_until_shipped_coupons_while_unused_privileges_only_unpaid() {
        use OrderStatus::*;
        let from = |kind| cancellable_from(kind, OrderOrigin::Redemption).unwrap();
        assert_eq!(from(MallItemKind::Physical), &[PendingPayment, Paid]);
        assert_eq!(from(MallItemKind::Coupon), &[PendingPayment, Completed]);
        assert_eq!(from(MallItemKind::Privilege), &[PendingPayment]);
        for kind in [
            MallItemKind::Physical,
            MallItemKind::Coupon,
            MallItemKind::Privilege,
        ] {
            assert!(!from(kind).contains(&Shipped) && !from(kind).contains(&Cancelled));
        }
    }

    #[test]
    fn prizes_and_crowdfunded_orders_are_never_cancelled() {
        for kind in [MallItemKind::Physical, MallItemKind::Coupon] {
            assert!(cancellable_from(kind, OrderOrigin::Prize).is_err());
            assert!(cancellable_from(kind, OrderOrigin::Crowdfund).is_err());
        }
        for origin in [
            OrderOrigin::Redemption,
            OrderOrigin::Crowdfund,
            OrderOrigin::Prize,
        ] {
            assert_eq!(OrderOrigin::parse(origin.as_str()), Some(origin));
        }
    }

    #[test]
    fn coupons_are_available_until_used_or_expired() {
        let now = DateTime::from_timestamp(1_900_000_000, 0).unwrap();
        let later = now + chrono::Duration::days(1);
        assert_eq!(coupon_status(None, later, now), CouponStatus::Available);
        assert_eq!(coupon_status(Some(now), later, now), CouponStatus::Used);
        assert_eq!(coupon_status(None, now, now), CouponStatus::Expired);
    }

    #[test]
    fn the_ladder_setting_parses_yuan_and_shares() {
        assert_eq!(Ladder::parse("100:0.5,300:0.8").unwrap(), Ladder::default());
        assert!(Ladder::parse("100").is_err());
        assert!(Ladder::parse("100:1.5").is_err());
    }

    proptest! {
        /// Whatever is asked, the member never pays more than the cash price, the points never
        /// exceed the ladder's share, and points and cash together cover the order.
        #[test]
        fn quotes_are_bounded_and_cover_the_price(
            unit_cash in 0i64..100_000, quantity in 1i64..5, asked in -100i64..100_000, balance in 0i64..100_000
        ) {
            let ladder = Ladder::default();
            let q = quote(0, unit_cash, quantity, asked, &ladder, d("0.1"), balance).unwrap();
            let cash = unit_cash * quantity;
            prop_assert!(q.cash_due_fen <= cash);
            prop_assert!(q.deduction <= q.max_deduction && q.deduction >= 0);
            prop_assert!(q.deduction <= balance);
            prop_assert!(Decimal::from(q.deduction * 10) <= Decimal::from(cash) * ladder.share_for(cash));
            prop_assert_eq!(q.cash_due_fen + q.deduction * 10, cash);
        }
    }
}
