use sea_orm::entity::prelude::*;

/// A coupon a member holds.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupon")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub order_id: Option<i64>,
    pub name: String,
    pub value_fen: i64,
    pub threshold_fen: i64,
    pub valid_from: DateTimeUtc,
    pub valid_until: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    /// Taken back with a cancelled order; no longer shown.
    pub revoked_at: Option<DateTimeUtc>,
    pub source: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
