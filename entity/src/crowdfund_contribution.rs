use sea_orm::entity::prelude::*;

/// Points one member put into a crowdfund (held in escrow).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crowdfund_contribution")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub crowdfund_id: i64,
    pub member_id: i64,
    pub points: i64,
    /// JSON: the lots the points came from, for a refund.
    #[sea_orm(column_type = "Text")]
    pub points_draws: String,
    pub refunded_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
