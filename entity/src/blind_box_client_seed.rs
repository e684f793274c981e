use sea_orm::entity::prelude::*;

/// A member's blind-box client seed (random until they choose one) and their draw nonce.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box_client_seed")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub member_id: i64,
    pub client_seed: String,
    /// The nonce the member's next draw takes, across all boxes.
    pub next_nonce: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
