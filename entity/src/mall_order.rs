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
    /// PENDING_PAYMENT | PAID | SHIPPED | COMPLETED | CANCELLED
    pub status: String,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    /// JSON: the lots the points came from, `[[amount, expires_at], ...]`.
    #[sea_orm(column_type = "Text")]
    pub points_draws: String,
    pub tracking_no: Option<String>,
    pub transaction_id: Option<String>,
    pub crowdfund_id: Option<i64>,
    /// REDEMPTION | CROWDFUND | PRIZE
    pub origin: String,
    pub address_id: Option<String>,
    /// Points+cash orders: cancelled if not paid by then.
    pub pay_by: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
