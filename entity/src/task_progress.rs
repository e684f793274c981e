use sea_orm::entity::prelude::*;

/// A member's progress on one task in one period (`d:…`, `w:…` or `all`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_progress")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub task_id: i64,
    pub period: String,
    pub progress: i64,
    pub completed_at: Option<DateTimeUtc>,
    pub claimed_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
