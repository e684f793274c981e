use sea_orm::entity::prelude::*;

/// A blind box members draw from with points.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub points_price: i64,
    pub daily_limit: Option<i32>,
    pub pity_threshold: Option<i32>,
    pub active: bool,
    /// The current (committed, unrevealed) seed.
    pub seed_id: i64,
    pub next_nonce: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
