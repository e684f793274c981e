use sea_orm::entity::prelude::*;

/// Members pooling points to redeem one item together.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "crowdfund")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub item_id: i64,
    pub initiator_id: i64,
    pub target_points: i64,
    pub raised_points: i64,
    pub status: CrowdfundStatus,
    pub deadline: DateTimeUtc,
    pub order_id: Option<i64>,
    pub created_at: DateTimeUtc,
}

crate::stored_enum! {
    /// A pool is open until funded, or until its deadline expires it.
    pub enum CrowdfundStatus {
        Open = "OPEN",
        Funded = "FUNDED",
        Expired = "EXPIRED",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
