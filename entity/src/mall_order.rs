use sea_orm::entity::prelude::*;

/// A redemption in the points mall.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mall_order")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub item_id: i64,
    pub quantity: i64,
    pub points_cost: i64,
    pub cash_due_fen: i64,
    pub status: OrderStatus,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    /// JSON: the lots the points came from, `[[amount, expires_at], ...]`.
    #[sea_orm(column_type = "Text")]
    pub points_draws: String,
    pub tracking_no: Option<String>,
    pub transaction_id: Option<String>,
    pub crowdfund_id: Option<i64>,
    pub origin: OrderOrigin,
    pub address_id: Option<String>,
    /// Points+cash orders: cancelled if not paid by then.
    pub pay_by: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

crate::stored_enum! {
    /// Where an order is in its life.
    pub enum OrderStatus {
        PendingPayment = "PENDING_PAYMENT",
        Paid = "PAID",
        Shipped = "SHIPPED",
        Completed = "COMPLETED",
        Cancelled = "CANCELLED",
    }
}

crate::stored_enum! {
    /// Where an order came from.
    pub enum OrderOrigin {
        /// The member redeemed it.
        Redemption = "REDEMPTION",
        /// A funded crowdfund, for its initiator.
        Crowdfund = "CROWDFUND",
        /// A blind-box prize (a 0-point order that took no mall stock).
        Prize = "PRIZE",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
