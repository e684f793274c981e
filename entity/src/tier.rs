use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tier")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    #[sea_orm(unique)]
    pub rank: i32,
    pub growth_threshold: i64,
    /// Decimal as text, e.g. "0.95".
    pub discount: String,
    /// Decimal as text, e.g. "1.2".
    pub points_multiplier: String,
    /// JSON array of strings.
    #[sea_orm(column_type = "Text")]
    pub benefits: String,
    /// Base birthday gift in points.
    pub birthday_gift: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
