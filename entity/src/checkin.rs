use sea_orm::entity::prelude::*;

/// One check-in on one business day (`made_up`: filled in later, at a points cost).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "checkin")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub member_id: i64,
    pub day: Date,
    pub made_up: bool,
    /// Points this check-in credited, streak bonus included.
    pub points: i64,
    pub streak_bonus: i64,
    /// The streak this check-in completed.
    pub streak: i32,
    pub idempotency_key: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
