use sea_orm::entity::prelude::*;

/// A purchase paid in the merchant's shop, recorded once per order number.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "purchase")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub order_no: String,
    pub member_id: i64,
    pub amount_fen: i64,
    /// JSON array of {category, amount}.
    #[sea_orm(column_type = "Text")]
    pub lines: String,
    pub points_awarded: i64,
    pub growth_awarded: i64,
    pub request_hash: String,
    pub paid_at: DateTimeUtc,
    pub refunded_at: Option<DateTimeUtc>,
    /// Points a refund could not take back because they were already spent.
    pub points_not_recovered: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
