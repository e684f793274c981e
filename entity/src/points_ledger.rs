use sea_orm::entity::prelude::*;

/// Append-only: one row per change of a member's points. Never updated, never deleted.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "points_ledger")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub delta: i64,
    pub balance_after: i64,
    pub kind: LedgerKind,
    /// What caused it: checkin, task, purchase, redeem, draw, transfer, expiry, admin, ...
    pub source: String,
    pub source_id: Option<String>,
    pub note: Option<String>,
    /// Scoped client key (`transfer:<uuid>`); unique per member.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request the key was first used with, to tell a retry from a reuse.
    pub request_hash: Option<String>,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

crate::stored_enum! {
    /// Which way a ledger entry moved points, and why.
    pub enum LedgerKind {
        Earn = "EARN",
        Spend = "SPEND",
        Refund = "REFUND",
        Expire = "EXPIRE",
        TransferIn = "TRANSFER_IN",
        TransferOut = "TRANSFER_OUT",
        Adjust = "ADJUST",
        Revoke = "REVOKE",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
