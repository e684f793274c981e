use sea_orm::entity::prelude::*;

/// An item in the points mall.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mall_item")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub category: String,
    pub kind: MallItemKind,
    pub image_url: Option<String>,
    pub points_price: i64,
    /// Points+cash items: the cash part, in fen.
    pub cash_price_fen: Option<i64>,
    pub stock: i64,
    pub per_member_limit: Option<i32>,
    pub min_tier_rank: i32,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub coupon_value_fen: Option<i64>,
    pub coupon_threshold_fen: Option<i64>,
    pub coupon_valid_days: Option<i32>,
    pub crowdfundable: bool,
    pub active: bool,
    pub updated_at: DateTimeUtc,
}

crate::stored_enum! {
    /// What redeeming an item gives: goods to ship, coupons, or a privilege delivered at once.
    pub enum MallItemKind {
        Physical = "PHYSICAL",
        Coupon = "COUPON",
        Privilege = "PRIVILEGE",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
