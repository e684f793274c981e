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
    /// COMMON | RARE | EPIC | LEGENDARY
    pub rarity: String,
    /// POINTS | COUPON | ITEM | HIDDEN_TASK | TITLE
    pub kind: String,
    pub weight: i64,
    pub stock: Option<i64>,
    /// POINTS: amount; COUPON: value in yuan; ITEM: mall item id; HIDDEN_TASK: task code.
    pub payload: String,
    pub retired: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
