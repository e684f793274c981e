use sea_orm::entity::prelude::*;

/// A server seed: committed (its SHA-256 published) before use, revealed on rotation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box_seed")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub box_id: i64,
    pub seed: String,
    pub commitment: String,
    pub revealed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
