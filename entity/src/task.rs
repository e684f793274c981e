use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub description: String,
    pub kind: TaskKind,
    /// The event kind that advances it (checkin, purchase, spend, redeem, draw, invite, or a
    /// client-reported kind such as browse_item).
    pub event: String,
    pub target: i64,
    pub reward_points: i64,
    pub active: bool,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub min_tier_rank: Option<i32>,
    pub audience_segment: Option<String>,
    pub updated_at: DateTimeUtc,
}

crate::stored_enum! {
    /// How a task's progress is counted: per business day, per ISO week, once, or for ever;
    /// HIDDEN tasks show once unlocked.
    pub enum TaskKind {
        Daily = "DAILY",
        Weekly = "WEEKLY",
        Once = "ONCE",
        Growth = "GROWTH",
        Challenge = "CHALLENGE",
        Hidden = "HIDDEN",
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
