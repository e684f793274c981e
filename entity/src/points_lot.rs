use sea_orm::entity::prelude::*;

/// Points from one credit, spent earliest-expiry first and expired as a whole.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "points_lot")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub ledger_id: i64,
    pub amount: i64,
    pub remaining: i64,
    pub expires_at: DateTimeUtc,
    pub expired_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
