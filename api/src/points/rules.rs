//! Pure rules of the points ledger: which lots a debit draws from, what the audit checks,
//! how the health report adds up, and what makes an idempotency key.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

pub use entity::points_ledger::LedgerKind;

/// A lot with points left, as a debit sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotBalance {
    pub id: i64,
    pub remaining: i64,
    pub expires_at: DateTime<Utc>,
}

/// Points a debit takes from one lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LotDraw {
    pub lot_id: i64,
    pub amount: i64,
    pub expires_at: DateTime<Utc>,
}

/// Takes `amount` from the lots that expire first (oldest lot first on a tie), so members lose
/// as little as possible to expiry. Takes what there is if the lots hold less.
pub fn plan_debit(lots: &[LotBalance], amount: i64) -> Vec<LotDraw> {
    let mut ordered: Vec<_> = lots.iter().filter(|l| l.remaining > 0).copied().collect();
    ordered.sort_by_key(|l| (l.expires_at, l.id));
    let mut left = amount.max(0);
    let mut draws = Vec::new();
    for lot in ordered {
        if left == 0 {
            break;
        }
        let take = lot.remaining.min(left);
        draws.push(LotDraw {
            lot_id: lot.id,
            amount: take,
            expires_at: lot.expires_at,
        });
        left -= take;
    }
    draws
}

/// What the audit knows of one member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberLedgerFacts {
    pub member_no: String,
    pub cached_balance: i64,
    pub ledger_sum: i64,
    /// `balance_after` of the member's newest ledger row, if any.
    pub last_balance_after: Option<i64>,
    pub lots_remaining: i64,
    pub lowest_lot_remaining: Option<i64>,
}

/// Every broken invariant of one member, in words an operator can act on.
pub fn audit_member(f: &MemberLedgerFacts) -> Vec<String> {
    let mut broken = Vec::new();
    let who = &f.member_no;
    if f.cached_balance != f.ledger_sum {
        broken.push(format!(
            "{who}: balance {} but the ledger sums to {}",
            f.cached_balance, f.ledger_sum
        ));
    }
    if f.last_balance_after.unwrap_or(0) != f.cached_balance {
        broken.push(format!(
            "{who}: balance {} but the last ledger row says {}",
            f.cached_balance,
            f.last_balance_after.unwrap_or(0)
        ));
    }
    if f.cached_balance < 0 {
        broken.push(format!("{who}: negative balance {}", f.cached_balance));
    }
    if f.cached_balance >= 0 && f.lots_remaining != f.cached_balance {
        broken.push(format!(
            "{who}: lots hold {} but the balance is {}",
            f.lots_remaining, f.cached_balance
        ));
    }
    if let Some(low) = f.lowest_lot_remaining.filter(|l| *l < 0) {
        broken.push(format!("{who}: a lot has {low} remaining"));
    }
    broken
}

/// One ledger row, as the health report needs it.
#[derive(Debug, Clone, Copy)]
pub struct HealthRow {
    pub kind: LedgerKind,
    pub delta: i64,
    pub day: NaiveDate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Flow {
    pub issued: i64,
    pub spent: i64,
    pub expired: i64,
}

impl Flow {
    /// Issued: earned plus positive adjustments. Spent: spending less refunds. Transfers
    /// move points between members and are neither.
    fn add(&mut self, kind: LedgerKind, delta: i64) {
        match kind {
            LedgerKind::Earn => self.issued += delta,
            LedgerKind::Adjust if delta > 0 => self.issued += delta,
            LedgerKind::Spend | LedgerKind::Refund => self.spent -= delta,
            LedgerKind::Expire => self.expired -= delta,
            _ => {}
        }
    }
}

/// Totals and a per-day series over the rows.
pub fn flows(rows: &[HealthRow]) -> (Flow, BTreeMap<NaiveDate, Flow>) {
    let mut total = Flow::default();
    let mut daily: BTreeMap<NaiveDate, Flow> = BTreeMap::new();
    for row in rows {
        total.add(row.kind, row.delta);
        daily.entry(row.day).or_default().add(row.kind, row.delta);
    }
    (total, daily)
}

/// What outstanding points are worth in yuan, to the fen (two places, always shown).
pub fn liability(
    outstanding: i64,
    point_value_yuan: rust_decimal::Decimal,
) -> rust_decimal::Decimal {
    let mut yuan = (rust_decimal::Decimal::from(outstanding) * point_value_yuan)
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
    yuan.rescale(2);
    yuan
}

/// Outstanding points above the budget by more than the alert margin (20 %).
pub fn budget_exceeded(outstanding: i64, budget: Option<i64>) -> bool {
    budget.is_some_and(|b| outstanding * 5 > b * 6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use proptest::prelude::*;

    fn t(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap() + Duration::days(days)
    }

    fn lot(id: i64, remaining: i64, expires_in: i64) -> LotBalance {
        LotBalance {
            id,
            remaining,
            expires_at: t(expires_in),
        }
    }

    #[test]
    fn a_debit_takes_from_the_lot_that_expires_first() {
        let lots = [lot(1, 50, 300), lot(2, 30, 10), lot(3, 40, 100)];
        let draws = plan_debit(&lots, 60);
        assert_eq!(
            draws
                .iter()
                .map(|d| (d.lot_id, d.amount))
                .collect::<Vec<_>>(),
            vec![(2, 30), (3, 30)]
        );
    }

    #[test]
    fn on_the_same_expiry_the_older_lot_goes_first_and_empty_lots_are_skipped() {
        let lots = [lot(7, 10, 5), lot(3, 0, 1), lot(4, 10, 5)];
        let draws = plan_debit(&lots, 15);
        assert_eq!(
            draws
                .iter()
                .map(|d| (d.lot_id, d.amount))
                .collect::<Vec<_>>(),
            vec![(4, 10), (7, 5)]
        );
    }

    #[test]
    fn the_audit_names_each_broken_invariant() {
        let healthy = MemberLedgerFacts {
            member_no: "M1".into(),
            cached_balance: 10,
            ledger_sum: 10,
            last_balance_after: Some(10),
            lots_remaining: 10,
            lowest_lot_remaining: Some(0),
        };
        assert!(audit_member(&healthy).is_empty());
        assert!(audit_member(&MemberLedgerFacts::default()).is_empty());
        let drifted = MemberLedgerFacts {
            cached_balance: 12,
            ..healthy.clone()
        };
        assert_eq!(audit_member(&drifted).len(), 3);
        let bad_lot = MemberLedgerFacts {
            lowest_lot_remaining: Some(-1),
            ..healthy
        };
        assert_eq!(audit_member(&bad_lot).len(), 1);
    }

    #[test]
    fn health_counts_refunds_against_spending_and_ignores_transfers() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let row = |kind, delta| HealthRow { kind, delta, day };
        let (total, daily) = flows(&[
            row(LedgerKind::Earn, 100),
            row(LedgerKind::Adjust, 20),
            row(LedgerKind::Adjust, -5),
            row(LedgerKind::Spend, -50),
            row(LedgerKind::Refund, 10),
            row(LedgerKind::Expire, -7),
            row(LedgerKind::TransferOut, -30),
            row(LedgerKind::TransferIn, 30),
        ]);
        assert_eq!(
            total,
            Flow {
                issued: 120,
                spent: 40,
                expired: 7
            }
        );
        assert_eq!(daily[&day], total);
    }

    #[test]
    fn liability_is_in_yuan_to_the_fen() {
        let tenth = rust_decimal::Decimal::new(1, 1);
        assert_eq!(liability(210, tenth).to_string(), "21.00");
        assert_eq!(liability(0, tenth).to_string(), "0.00");
        assert_eq!(
            liability(5, rust_decimal::Decimal::new(125, 3)).to_string(),
            "0.63"
        );
    }

    #[test]
    fn the_budget_alert_fires_above_one_hundred_twenty_percent() {
        assert!(!budget_exceeded(1_000_000, None));
        assert!(!budget_exceeded(1200, Some(1000)));
        assert!(budget_exceeded(1201, Some(1000)));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Credit(i64, i64),
        Debit(i64),
        ExpireAt(i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (1i64..500, 1i64..900).prop_map(|(n, ttl)| Op::Credit(n, ttl)),
            (1i64..800).prop_map(Op::Debit),
            (0i64..1000).prop_map(Op::ExpireAt),
        ]
    }

    proptest! {
        /// A model of the ledger driven only by these rules keeps every audited invariant.
        #[test]
        fn random_credit_debit_expire_sequences_keep_every_invariant(ops in prop::collection::vec(op(), 1..80)) {
            let mut lots: Vec<LotBalance> = Vec::new();
            let mut balance = 0i64;
            let mut deltas = Vec::new();
            for (i, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Credit(n, ttl) => {
                        lots.push(lot(i as i64, n, ttl));
                        balance += n;
                        deltas.push(n);
                    }
                    Op::Debit(n) => {
                        // The conditional update refuses a debit the balance cannot cover.
                        if balance >= n {
                            for draw in plan_debit(&lots, n) {
                                let l = lots.iter_mut().find(|l| l.id == draw.lot_id).unwrap();
                                prop_assert!(draw.amount <= l.remaining);
                                l.remaining -= draw.amount;
                            }
                            balance -= n;
                            deltas.push(-n);
                        }
                    }
                    Op::ExpireAt(day) => {
                        for l in lots.iter_mut().filter(|l| l.expires_at <= t(day) && l.remaining > 0) {
                            balance -= l.remaining;
                            deltas.push(-l.remaining);
                            l.remaining = 0;
                        }
                    }
                }
                let facts = MemberLedgerFacts {
                    member_no: "M".into(),
                    cached_balance: balance,
                    ledger_sum: deltas.iter().sum(),
                    last_balance_after: Some(balance),
                    lots_remaining: lots.iter().map(|l| l.remaining).sum(),
                    lowest_lot_remaining: lots.iter().map(|l| l.remaining).min(),
                };
                prop_assert!(audit_member(&facts).is_empty(), "{:?}", audit_member(&facts));
            }
        }
    }
}
