use sea_orm::entity::prelude::*;

/// A server seed: committed (the SHA-256 of the seed and the prize table published) before use,
/// revealed on rotation.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blind_box_seed")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub box_id: i64,
    pub seed: String,
    pub commitment: String,
    /// The canonical prize table the commitment covers (`id:weight:stock:rarity,...`); null for
    /// seeds committed before tables were, whose commitment covers the seed alone.
    #[sea_orm(column_type = "Text", nullable)]
    pub prize_table: Option<String>,
    pub revealed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
