use sea_orm::entity::prelude::*;

/// One prize of a box.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box_prize")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub box_id: i64,
    /// The published order, which verification walks.
    pub position: i32,
    pub name: String,
    pub rarity: Rarity,
    pub kind: PrizeKind,
    pub weight: i64,
    pub stock: Option<i64>,
    /// POINTS: amount; COUPON: value in yuan; ITEM: mall item id; HIDDEN_TASK: task code.
    pub payload: String,
    pub retired: bool,
}

crate::stored_enum! {
    /// How rare a prize is; RARE and better count for pity.
    #[derive(PartialOrd, Ord)]
    pub enum Rarity {
        Common = "COMMON",
        Rare = "RARE",
        Epic = "EPIC",
        Legendary = "LEGENDARY",
    }
}

crate::stored_enum! {
    /// What winning a prize gives.
    pub enum PrizeKind {
        /// An amount of points (payload).
        Points = "POINTS",
        /// A coupon worth the payload in yuan.
        Coupon = "COUPON",
        /// The mall item whose id is the payload.
        Item = "ITEM",
        /// The HIDDEN task whose code is the payload.
        HiddenTask = "HIDDEN_TASK",
        /// The title whose code is the payload.
        Title = "TITLE",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
